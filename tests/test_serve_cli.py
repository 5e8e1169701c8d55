"""`hermit --headless serve` and its aliases, run as a user runs them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
import pytest

from conftest import HERMIT, ServeProcess, free_port, run_cli


@pytest.mark.parametrize("argv", [["--headless", "serve"], ["serve"], ["server"], ["server", "--reload"]])
def test_serve_and_its_aliases_answer_health(base_env, argv):
    port = free_port()
    proc = subprocess.Popen([*HERMIT, *argv, "--port", str(port)], env=base_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            import time

            time.sleep(0.05)
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"listening on http://127.0.0.1:{port}" in err


def test_one_log_line_per_request_at_info(base_env):
    proc = ServeProcess(base_env, "--log-level", "info")
    for _ in range(3):
        httpx.post(proc.url + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    code, _out, err = proc.stop()
    assert code == 0
    lines = [l for l in err.splitlines() if "POST /v1/chat/completions 200" in l]
    assert len(lines) == 3 and "INFO" in lines[0] and "prompt=" in lines[0]


def test_warning_level_logs_no_request_lines(base_env):
    proc = ServeProcess(base_env, "--log-level", "warning")
    httpx.post(proc.url + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    _code, _out, err = proc.stop()
    assert "POST /v1/chat/completions" not in err


def test_port_in_use_is_one_clear_line(base_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli(base_env, "--headless", "serve", "--port", str(port), timeout=20)
    assert result.returncode == 1
    assert "already in use" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_non_loopback_bind_needs_an_admin_token(base_env):
    result = run_cli(base_env, "serve", "--host", "0.0.0.0", "--port", "0", timeout=20)
    assert result.returncode == 1 and "HERMIT_ADMIN_TOKEN" in result.stderr


def test_hermit_proxy_is_the_same_program(base_env):
    import shutil

    exe = shutil.which("hermit-proxy", path=str(__import__("pathlib").Path(sys.executable).parent)) or shutil.which("hermit-proxy")
    assert exe, "the hermit-proxy console script is installed"
    result = subprocess.run([exe, "--help"], env=base_env, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 and "serve" in result.stdout


def test_bad_usage_exits_2_with_one_line(base_env):
    result = run_cli(base_env, "serve", "--port", "notaport")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli(base_env, "--headless")
    assert result.returncode == 2


def test_help_and_cli_paths_do_not_import_textual_or_quart(base_env):
    code = "import sys; from hermit.cli import build_parser; build_parser(); print(sorted(m for m in ('textual','quart','hypercorn','httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env=base_env, capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "[]", out.stderr


def test_providers_lists_every_provider_with_its_aliases(base_env):
    import json

    result = run_cli(base_env, "--headless", "providers", "--json")
    assert result.returncode == 0, result.stderr
    data = {p["name"]: p for p in json.loads(result.stdout)["data"]}
    assert len(data) == 20
    assert data["xai-grok"]["aliases"] == ["xai", "grok"]
    assert data["ollama"]["base_url"] == "http://localhost:11434/v1" and data["ollama"]["local"]


def test_json_flag_before_the_command_and_database_url_override(base_env, tmp_path):
    import json

    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = run_cli(base_env, "--json", "--database-url", other, "profiles", "list")
    assert result.returncode == 0, result.stderr
    assert [p["name"] for p in json.loads(result.stdout)["data"]] == ["default"]
    assert (tmp_path / "other.db").exists()
