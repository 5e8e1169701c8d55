"""Who sent a request: X-Hermit-Client, else a name recognised from the User-Agent."""

from __future__ import annotations

import re
from functools import lru_cache

_KNOWN = (
    (re.compile(r"^OpenAI/Python", re.I), "openai-python"),
    (re.compile(r"^(OpenAI/JS|openai-node)", re.I), "openai-node"),
    (re.compile(r"^AsyncOpenAI/Python", re.I), "openai-python"),
    (re.compile(r"claude-(cli|code)", re.I), "claude-code"),
    (re.compile(r"codex", re.I), "codex"),
    (re.compile(r"aider", re.I), "aider"),
    (re.compile(r"opencode", re.I), "opencode"),
    (re.compile(r"roo-?code|roo-cline", re.I), "roo-code"),
    (re.compile(r"cline", re.I), "cline"),
    (re.compile(r"continue", re.I), "continue"),
    (re.compile(r"cursor", re.I), "cursor"),
    (re.compile(r"zed", re.I), "zed"),
    (re.compile(r"goose", re.I), "goose"),
    (re.compile(r"litellm", re.I), "litellm"),
    (re.compile(r"langchain", re.I), "langchain"),
    (re.compile(r"llamaindex|llama-index", re.I), "llamaindex"),
    (re.compile(r"^curl/", re.I), "curl"),
    (re.compile(r"^Wget", re.I), "wget"),
    (re.compile(r"^HTTPie", re.I), "httpie"),
    (re.compile(r"^python-httpx", re.I), "python-httpx"),
    (re.compile(r"^python-requests", re.I), "python-requests"),
    (re.compile(r"aiohttp", re.I), "python-aiohttp"),
    (re.compile(r"^node-fetch|^undici|^node$", re.I), "node"),
    (re.compile(r"^Go-http-client", re.I), "go"),
    (re.compile(r"^Mozilla/", re.I), "browser"),
)
_TOKEN = re.compile(r"^([A-Za-z0-9._-]{1,40})")


def client_name(explicit: str | None, user_agent: str | None) -> str | None:
    if explicit and explicit.strip():
        return explicit.strip()[:100]
    return _from_user_agent(user_agent or "")


@lru_cache(maxsize=512)
def _from_user_agent(user_agent: str) -> str | None:
    ua = user_agent.strip()
    if not ua:
        return None
    for pattern, name in _KNOWN:
        if pattern.search(ua):
            return name
    match = _TOKEN.match(ua)
    return match.group(1).lower() if match else None
