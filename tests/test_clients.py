"""Recognising who sent a request from X-Hermit-Client or the User-Agent."""

import pytest

from hermit.proxy.clients import client_name


@pytest.mark.parametrize(
    "user_agent, expected",
    [
        ("OpenAI/Python 1.99.1", "openai-python"),
        ("AsyncOpenAI/Python 1.2.0", "openai-python"),
        ("OpenAI/JS 4.67.0", "openai-node"),
        ("curl/8.5.0", "curl"),
        ("claude-cli/1.0.3 (external, cli)", "claude-code"),
        ("codex_cli_rs/0.1.2", "codex"),
        ("aider/0.80.0", "aider"),
        ("python-httpx/0.28.1", "python-httpx"),
        ("MyTool/2.0 (linux)", "mytool"),
        ("", None),
        (None, None),
    ],
)
def test_user_agent_recognition(user_agent, expected):
    assert client_name(None, user_agent) == expected


def test_explicit_header_wins():
    assert client_name("  nightly-batch ", "curl/8") == "nightly-batch"
