"""A fake GitHub on loopback: the OAuth device flow, the Copilot token exchange and a Copilot chat API.

Device flow: POST /login/device/code, POST /login/oauth/access_token. Each device code follows a
script of poll answers, for example ["pending", "slow_down", "ok"], ["pending", "denied"] or
["expired"]; the last step repeats. Polls are recorded with their times so tests can check the
interval. Token exchange: GET /copilot_internal/v2/token with `Authorization: token <gh>`.
Copilot API (`endpoints.api` = <url>/copilot): POST /copilot/chat/completions needs a live Copilot
token and an Editor-Version header; tokens can be revoked to provoke a 401.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Device:
    code: str
    client_id: str
    script: list[str]
    token: str
    polls: list[float] = field(default_factory=list)


class FakeGitHub:
    def __init__(self, *, interval: float = 0.05, expires_in: float = 30, slow_down_interval: float = 0.2,
                 token_ttl: float = 1800, refresh_in: float = 1500, client_ids: tuple[str, ...] = ("test-client",)):
        self.interval = interval
        self.expires_in = expires_in
        self.slow_down_interval = slow_down_interval
        self.token_ttl = token_ttl
        self.refresh_in = refresh_in
        self.client_ids = set(client_ids)
        self.script: list[str] = ["pending", "ok"]
        self.github_tokens: set[str] = set()  # GitHub tokens that may exchange for a Copilot token
        self.copilot_tokens: dict[str, float] = {}  # live Copilot token -> expires_at
        self.devices: dict[str, Device] = {}
        self.exchanges: list[str] = []  # GitHub tokens presented, in order
        self.chat_requests: list[dict[str, Any]] = []  # {"headers", "body", "status"}
        self.send_endpoints = True
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def copilot_api(self) -> str:
        return self.url + "/copilot"

    def start(self) -> "FakeGitHub":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeGitHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def revoke_copilot_tokens(self) -> None:
        with self._lock:
            self.copilot_tokens.clear()

    # -- request handling -------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _read(self) -> bytes:
                length = int(self.headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            def do_POST(self) -> None:  # noqa: N802
                raw = self._read()
                if self.path == "/login/device/code":
                    return fake._device_code(self, raw)
                if self.path == "/login/oauth/access_token":
                    return fake._access_token(self, raw)
                if self.path == "/copilot/chat/completions":
                    return fake._chat(self, raw)
                return self._reply(404, {"message": "Not Found"})

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/copilot_internal/v2/token":
                    return fake._exchange(self)
                return self._reply(404, {"message": "Not Found"})

        return Handler

    def _device_code(self, h, raw: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if "application/json" not in (h.headers.get("accept") or ""):
            return h._reply(406, {"error": "this fake only answers JSON (send Accept: application/json)"})
        client_id = form.get("client_id", "")
        if client_id not in self.client_ids:
            return h._reply(200, {"error": "incorrect_client_credentials",
                                  "error_description": "The client_id is not valid."})
        n = next(self._seq)
        code = f"device-{n:036d}"
        with self._lock:
            self.devices[code] = Device(code, client_id, list(self.script), f"gho_faketoken{n:04d}abcdefghijkl")
        h._reply(200, {
            "device_code": code,
            "user_code": f"ABCD-{n:04d}",
            "verification_uri": self.url + "/login/device",
            "expires_in": self.expires_in,
            "interval": self.interval,
        })

    def _access_token(self, h, raw: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        device = self.devices.get(form.get("device_code", ""))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code":
            return h._reply(200, {"error": "unsupported_grant_type"})
        if device is None or device.client_id != form.get("client_id"):
            return h._reply(200, {"error": "incorrect_device_code"})
        with self._lock:
            device.polls.append(time.monotonic())
            step = device.script.pop(0) if len(device.script) > 1 else device.script[0]
        if step == "pending":
            return h._reply(200, {"error": "authorization_pending"})
        if step == "slow_down":
            return h._reply(200, {"error": "slow_down", "interval": self.slow_down_interval})
        if step == "denied":
            return h._reply(200, {"error": "access_denied"})
        if step == "expired":
            return h._reply(200, {"error": "expired_token"})
        with self._lock:
            self.github_tokens.add(device.token)
        h._reply(200, {"access_token": device.token, "token_type": "bearer", "scope": "read:user"})

    def _exchange(self, h) -> None:
        auth = h.headers.get("authorization") or ""
        gh = auth[6:].strip() if auth.lower().startswith("token ") else ""
        with self._lock:
            self.exchanges.append(gh)
            known = gh in self.github_tokens
        if not known:
            return h._reply(401, {"message": "Bad credentials"})
        now = time.time()
        token = f"tid=fake{next(self._seq)};exp={int(now + self.token_ttl)};sku=free"
        with self._lock:
            self.copilot_tokens[token] = now + self.token_ttl
        body: dict[str, Any] = {"token": token, "expires_at": int(now + self.token_ttl), "refresh_in": self.refresh_in}
        if self.send_endpoints:
            body["endpoints"] = {"api": self.copilot_api, "proxy": self.url + "/proxy"}
        h._reply(200, body)

    def _chat(self, h, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            live = self.copilot_tokens.get(token, 0) > time.time()
        if not live:
            status, answer = 401, {"error": {"message": "unauthorized: token expired", "type": "invalid_request_error",
                                             "param": None, "code": "unauthorized"}}
        elif not headers.get("editor-version"):
            status, answer = 400, {"error": {"message": "missing Editor-Version header for IDE auth",
                                             "type": "invalid_request_error", "param": None, "code": None}}
        else:
            model = body.get("model") if isinstance(body, dict) else None
            status, answer = 200, {
                "id": "chatcmpl-copilot", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi from Copilot"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        with self._lock:
            self.chat_requests.append({"headers": headers, "body": body, "status": status})
        h._reply(status, answer)
