"""`hermit config get|set log-level`: persisted in the database, used by serve, picked up live."""

from __future__ import annotations

import json
import threading
import time

import httpx

from conftest import cli_json


def test_get_and_set_log_level(cli):
    plain = cli("config", "get", "log-level")
    assert plain.returncode == 0 and plain.stdout.strip() == "info"
    assert cli_json(cli("config", "get", "log-level", "--json")) == {"log_level": "info"}
    assert cli_json(cli("--json", "config", "set", "log-level", "DEBUG")) == {"log_level": "debug"}
    assert cli_json(cli("--json", "config", "get", "log-level")) == {"log_level": "debug"}
    human = cli("config", "set", "log-level", "warning")
    assert human.returncode == 0 and "warning" in human.stdout


def test_invalid_level_or_key_is_refused_with_the_valid_ones(cli):
    bad = cli("config", "set", "log-level", "loud")
    assert bad.returncode == 2 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "critical, error, warning, info, debug" in bad.stderr
    assert cli("config", "get", "colour").returncode == 2
    assert cli("config", "set", "log-level").returncode == 2
    assert cli_json(cli("config", "get", "log-level", "--json")) == {"log_level": "info"}


def test_serve_uses_the_stored_level_and_picks_up_a_change_live(cli, serve_process):
    assert cli("config", "set", "log-level", "warning").returncode == 0
    server = serve_process()  # no --log-level: the stored one
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(server.proc.stderr.readline, "")), daemon=True)
    reader.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(server.url + "/v1/chat/completions", json=body, timeout=10).status_code == 200

    assert cli("config", "set", "log-level", "info").returncode == 0
    changed_at = time.monotonic()
    deadline = changed_at + 8
    while time.monotonic() < deadline and not any("POST /v1/chat/completions 200" in l for l in lines):
        httpx.post(server.url + "/v1/chat/completions", json=body, timeout=10)
        time.sleep(0.2)
    picked_up = time.monotonic() - changed_at
    code, _out, _err = server.stop()
    reader.join(5)
    text = "".join(lines)
    assert code == 0
    assert "log level warning" in text  # the startup line names the stored level
    assert "log level is now info" in text
    assert any("POST /v1/chat/completions 200" in l for l in lines), text
    assert picked_up < 6


def test_http_log_level_route_writes_the_same_setting(hermit, cli):
    response = httpx.put(hermit.url + "/config/log-level", json={"log_level": "error"}, timeout=10)
    assert response.status_code == 200 and response.json() == {"log_level": "error"}
    assert json.loads(cli("config", "get", "log-level", "--json").stdout) == {"log_level": "error"}
