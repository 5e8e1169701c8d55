"""Management routes (JSON): profiles, auth profiles, config; all guarded by HERMIT_ADMIN_TOKEN when it is set.

Blocking store work runs on the server's database threads; quick tests use the server's own
upstream client and credentials, and an activation switches the proxy before the answer goes out.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import time
from typing import Any, Awaitable, Callable

from quart import Quart, Response, request

from hermit.proxy.forward import error_body

GUARDED_PREFIXES = ("/profiles", "/auth-profiles", "/prices", "/analytics", "/config")
log = logging.getLogger("hermit.admin")

# Profile body fields (the CLI flags in snake_case) and their JSON types.
_STR, _INT, _BOOL = (str,), (int,), (bool,)
PROFILE_FIELDS: dict[str, tuple[type, ...]] = {
    "name": _STR, "provider": _STR, "base_url": _STR, "model": _STR, "api_key": _STR,
    "default_max_tokens": _INT, "allow_client_model_override": _BOOL, "auth_profile_id": _INT,
    "embedding_model": _STR,
}
CLEARABLE = ("base_url", "model", "api_key", "default_max_tokens", "auth_profile_id", "embedding_model")
FLAGS = ("activate", "skip_test")
# Fields of the profile object that a client may send back unchanged (GET, edit, PUT): ignored.
READ_ONLY = ("id", "is_active", "api_key_set", "api_key_hint", "created_at", "updated_at", "last_activated_at")


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.extra = extra or {}

    def response(self) -> Response:
        body = json.loads(error_body(self.message, self.type, self.code, self.param))
        body.update(self.extra)
        return Response(json.dumps(body), status=self.status, content_type="application/json")


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json")


def _to_api_error(exc: BaseException) -> ApiError | None:
    """Map a service exception to the error a client sees (None: a real bug)."""
    from hermit.services.config import InvalidSetting
    from hermit.services.github import GitHubError
    from hermit.services.profiles import Conflict, NotFound, UnknownReference, ValidationError
    from hermit.services.secrets import SecretKeyError
    from hermit.store.db import StoreError

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return ApiError(400, str(exc), "invalid_request_error", "invalid_value", exc.field)
    if isinstance(exc, UnknownReference):
        return ApiError(400, str(exc), "invalid_request_error", "unknown_reference", exc.field)
    if isinstance(exc, NotFound):
        return ApiError(404, str(exc), "not_found_error", "not_found")
    if isinstance(exc, Conflict):
        text = str(exc)
        code = "profile_active" if "is active" in text else "name_taken"
        return ApiError(409, text, "conflict_error", code, None if code == "profile_active" else "name")
    if isinstance(exc, InvalidSetting):
        return ApiError(400, str(exc), "invalid_request_error", "invalid_value", "log_level")
    if isinstance(exc, GitHubError):
        final = exc.kind not in ("unreachable", "bad_response")
        return ApiError(400 if final else 502, str(exc), "github_error", exc.kind)
    if isinstance(exc, SecretKeyError):
        return ApiError(500, str(exc), "server_error", "secret_key_unavailable")
    if isinstance(exc, StoreError):
        return ApiError(503, str(exc), "server_error", "database_unavailable")
    try:
        import peewee

        if isinstance(exc, peewee.OperationalError):
            text = str(exc)
            message = ("the database is locked by another process (timed out waiting)" if "locked" in text
                       else f"database error: {text}")
            return ApiError(503, message, "server_error", "database_unavailable")
    except ImportError:  # pragma: no cover
        pass
    return None


def _managed(fn: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - mapped to OpenAI-shaped errors; bugs go to the app handler
            error = _to_api_error(exc)
            if error is None:
                raise
            return error.response()

    return wrapper


async def _body(required: bool = False) -> dict[str, Any]:
    raw = await request.get_data()
    if not raw.strip():
        if required:
            raise ApiError(400, "request body must be a JSON object", code="invalid_body")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_body")
    return body


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        raw = request.args.get(name)
        return raw is not None and raw.strip().lower() in ("1", "true", "yes", "on", "")
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false", code="invalid_value", param=name)
    return value


def _profile_fields(body: dict[str, Any], *, creating: bool, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Type-check a profile body; null clears a clearable field on update."""
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if key in FLAGS or key in extra or key in READ_ONLY:
            continue
        kinds = PROFILE_FIELDS.get(key)
        if kinds is None:
            accepted = ", ".join([*PROFILE_FIELDS, *FLAGS, *extra])
            raise ApiError(400, f"unknown field {key!r}; accepted fields: {accepted}", code="unknown_field", param=key)
        if value is None:
            if key in CLEARABLE and not creating:
                fields[key] = ""  # clear: back to HERMIT_<PROVIDER>_* or the built-in default
            elif key in ("name", "provider") and creating:
                raise ApiError(400, f"{key} must be a string", code="invalid_value", param=key)
            elif key in ("name", "provider"):
                raise ApiError(400, f"{key} cannot be null", code="invalid_value", param=key)
            continue
        if kinds is _INT and (isinstance(value, bool) or not isinstance(value, int)):
            raise ApiError(400, f"{key} must be a whole number", code="invalid_value", param=key)
        if not isinstance(value, kinds) or (kinds is _STR and isinstance(value, bool)):
            expected = {_STR: "a string", _BOOL: "true or false"}.get(kinds, "a whole number")
            raise ApiError(400, f"{key} must be {expected}", code="invalid_value", param=key)
        fields[key] = value
    return fields


def _probe_failed(result) -> ApiError:
    return ApiError(
        422, f"quick test failed, nothing changed: {result.message}", "probe_failed", result.reason,
        extra={"probe": result.to_json()},
    )


def register(app: Quart, services, forwarder) -> None:
    token = services.settings.admin_token
    devices: dict[str, tuple[float, float, str | None]] = {}  # device_code -> (interval, deadline, client id)

    @app.before_request
    async def require_admin() -> Response | None:
        if token is None or not request.path.startswith(GUARDED_PREFIXES):
            return None
        given = request.headers.get("authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode()):
            return None
        return Response(
            error_body("missing or wrong admin token: send Authorization: Bearer <HERMIT_ADMIN_TOKEN>",
                       "authentication_error", "invalid_admin_token"),
            status=401,
            content_type="application/json",
        )

    async def db(fn: Callable, *args: Any) -> Any:
        executor = app.extensions.get("hermit.executor")
        return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args))

    async def switched() -> None:
        """Make the proxy use the new active profile now (other processes notice within a poll)."""
        active = app.extensions.get("hermit.active")
        if active is not None:
            await active.refresh()

    async def quick_test(target) -> None:
        from hermit.services.probe import probe_in_server

        result = await probe_in_server(forwarder, target)
        if not result.ok:
            raise _probe_failed(result)

    def published(profile, source: str = "http") -> None:
        from hermit.services.events import ProfileActivated

        if services.bus.active:
            services.bus.publish(ProfileActivated(profile.id, profile.name, source))

    profiles = services.profiles
    show = profiles.to_json

    # -- profiles ---------------------------------------------------------------------------

    @app.get("/profiles")
    @_managed
    async def list_profiles() -> Response:
        return _json({"data": [show(p) for p in await db(profiles.list)]})

    @app.get("/profiles/current")
    @_managed
    async def current_profile() -> Response:
        profile = await db(profiles.current)
        if profile is None:
            raise ApiError(404, "no active profile; activate one with POST /profiles/{id}/activate",
                           "not_found_error", "no_active_profile")
        return _json(show(profile))

    @app.get("/profiles/history")
    @_managed
    async def profile_history() -> Response:
        raw = request.args.get("limit", "").strip()
        limit = None
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise ApiError(400, "limit must be a whole number of at least 1", code="invalid_value", param="limit")
            limit = int(raw)
        return _json({"data": [a.to_json() for a in await db(profiles.history, limit)]})

    @app.get("/profiles/<id_or_name>")
    @_managed
    async def get_profile(id_or_name: str) -> Response:
        return _json(show(await db(profiles.get, id_or_name)))

    @app.post("/profiles")
    @_managed
    async def create_profile() -> Response:
        from hermit.services.profiles import clean_fields

        body = await _body(required=True)
        fields = clean_fields(_profile_fields(body, creating=True), creating=True)
        activate, skip_test = _flag(body, "activate"), _flag(body, "skip_test")
        target = await db(profiles.vet_new, fields)
        if not skip_test:
            await quick_test(target)
        profile = await db(profiles.add, fields)
        if activate:
            profile = await db(profiles.activate, profile.id, "http")
            await switched()
            published(profile)
        return _json(show(profile), 201)

    @app.post("/profiles/test")
    @_managed
    async def test_profile() -> Response:
        from hermit.services.probe import probe_in_server
        from hermit.services.profiles import clean_fields, draft_profile

        body = await _body()
        saved = body.get("saved")
        if saved is not None:
            if not isinstance(saved, (str, int)) or isinstance(saved, bool):
                raise ApiError(400, "saved must be a profile id or name", code="invalid_value", param="saved")
            target = profiles.target(await db(profiles.get, saved))
        else:
            fields = _profile_fields(body, creating=True, extra=("saved",))
            if "provider" not in fields:
                raise ApiError(400, "give `saved` (a profile id or name) or a profile definition with `provider`",
                               code="missing_required_parameter", param="provider")
            fields = clean_fields({**fields, "name": fields.get("name") or "unsaved-test"}, creating=True)
            await db(profiles.check_references, fields)
            target = profiles.target(draft_profile(fields))
        result = await probe_in_server(forwarder, target)
        if not result.ok:
            raise _probe_failed(result)
        return _json(result.to_json())

    @app.put("/profiles/<id_or_name>")
    @_managed
    async def update_profile(id_or_name: str) -> Response:
        from hermit.services.profiles import clean_fields

        body = await _body(required=True)
        existing = await db(profiles.get, id_or_name)
        changes = clean_fields(_profile_fields(body, creating=False), creating=False)
        activate, skip_test = _flag(body, "activate"), _flag(body, "skip_test")
        target = await db(functools.partial(profiles.vet_changes, existing, changes, activate=activate))
        if not skip_test and target is not None:
            await quick_test(target)
        profile = await db(profiles.update, existing.id, changes)
        if activate:
            profile = await db(profiles.activate, profile.id, "http")
            published(profile)
        if profile.is_active:
            await switched()
        return _json(show(profile))

    @app.post("/profiles/<id_or_name>/activate")
    @_managed
    async def activate_profile(id_or_name: str) -> Response:
        body = await _body()
        profile = await db(profiles.get, id_or_name)
        if not _flag(body, "skip_test"):
            await quick_test(profiles.target(profile))
        profile = await db(profiles.activate, profile.id, "http")
        await switched()
        published(profile)
        return _json(show(profile))

    @app.delete("/profiles/<id_or_name>")
    @_managed
    async def delete_profile(id_or_name: str) -> Response:
        await db(profiles.delete, id_or_name)
        return Response(b"", status=204)

    # -- auth profiles ----------------------------------------------------------------------

    auths = services.auth_profiles

    @app.get("/auth-profiles")
    @_managed
    async def list_auth_profiles() -> Response:
        return _json({"data": [auths.to_json(a) for a in await db(auths.list)]})

    @app.post("/auth-profiles")
    @_managed
    async def create_auth_profile() -> Response:
        body = await _body(required=True)
        unknown = set(body) - {"name", "kind", "github_token"}
        if unknown:
            field = sorted(unknown)[0]
            raise ApiError(400, f"unknown field {field!r}; accepted fields: name, kind, github_token",
                           code="unknown_field", param=field)
        kind = body.get("kind", "github-copilot")
        # Saving under an existing name replaces its token (logging in again), also 201.
        auth, _created = await db(auths.save, body.get("name"), kind, body.get("github_token"))
        return _json(auths.to_json(auth), 201)

    def _client_id(body: dict[str, Any]) -> str:
        client_id = body.get("client_id") or services.settings.github_oauth_client_id
        if not isinstance(client_id, str) or not client_id.strip():
            raise ApiError(400, "client_id is required (in the body, or GITHUB_OAUTH_CLIENT_ID on the server)",
                           code="missing_required_parameter", param="client_id")
        return client_id.strip()

    @app.post("/auth-profiles/github-copilot/device/start")
    @_managed
    async def device_start() -> Response:
        from hermit.services.github import start_device_flow

        body = await _body()
        client_id = _client_id(body)
        code = await start_device_flow(forwarder.client, services.settings.github_url, client_id)
        now = time.monotonic()
        for key in [k for k, v in devices.items() if v[1] < now]:
            devices.pop(key, None)
        devices[code.device_code] = (code.interval, now + code.expires_in, client_id)
        return _json(code.to_json())

    @app.post("/auth-profiles/github-copilot/device/complete")
    @_managed
    async def device_complete() -> Response:
        from hermit.services.github import DEFAULT_EXPIRES_IN, DEFAULT_INTERVAL, poll_device_flow

        body = await _body(required=True)
        name, device_code = body.get("name"), body.get("device_code")
        if not isinstance(name, str) or not name.strip() or name.strip().isdigit():
            raise ApiError(400, "name is required (a name for the auth profile, not a number)",
                           code="missing_required_parameter", param="name")
        if not isinstance(device_code, str) or not device_code.strip():
            raise ApiError(400, "device_code is required (from .../device/start)",
                           code="missing_required_parameter", param="device_code")
        interval, deadline, started_with = devices.get(
            device_code, (DEFAULT_INTERVAL, time.monotonic() + DEFAULT_EXPIRES_IN, None)
        )
        client_id = body.get("client_id") or started_with
        client_id = _client_id({"client_id": client_id})
        try:
            github_token = await poll_device_flow(
                forwarder.client, services.settings.github_url, client_id, device_code,
                interval=interval, expires_in=max(0.0, deadline - time.monotonic()),
            )
        finally:
            devices.pop(device_code, None)
        auth, _created = await db(auths.save, name, "github-copilot", github_token)
        return _json(auths.to_json(auth), 201)

    # -- config -----------------------------------------------------------------------------

    config = services.config

    @app.get("/config/log-level")
    @_managed
    async def get_log_level() -> Response:
        return _json({"log_level": await db(config.log_level)})

    @app.put("/config/log-level")
    @_managed
    async def set_log_level() -> Response:
        body = await _body(required=True)
        level = body.get("log_level")
        if not isinstance(level, str):
            from hermit.services.config import LOG_LEVELS

            raise ApiError(400, f"log_level is required; valid levels: {', '.join(LOG_LEVELS)}",
                           code="missing_required_parameter", param="log_level")
        return _json({"log_level": await db(config.set_log_level, level)})
