"""The Quart application: health, models and the management routes (proxy POSTs: see asgi.py)."""

from __future__ import annotations

import json
import logging

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from hermit import __version__
from hermit.proxy.forward import Forwarder, Reply, error_body

log = logging.getLogger("hermit.access")


def to_response(reply: Reply) -> Response:
    if reply.stream is not None:
        response = Response(reply.stream, status=reply.status, headers=reply.headers)
        response.timeout = None  # streams may run for a long time
        return response
    return Response(reply.body, status=reply.status, headers=reply.headers)


def create_app(services, forwarder: Forwarder) -> Quart:
    app = Quart("hermit")
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_body_bytes
    app.config["RESPONSE_TIMEOUT"] = None
    app.config["BODY_TIMEOUT"] = services.settings.request_timeout
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions["hermit"] = services
    app.extensions["hermit.forwarder"] = forwarder

    @app.get("/v1/models")
    @app.get("/models")
    async def models() -> Response:
        return to_response(await forwarder.models())

    @app.get("/health")
    async def health() -> Response:
        target = forwarder.target
        active = None
        if target is not None:
            active = {
                "id": target.profile_id,
                "name": target.profile_name,
                "provider": target.provider.name,
                "model": target.model,
            }
        body = {"status": "ok", "version": __version__, "active_profile": active}
        return Response(json.dumps(body), status=200, content_type="application/json")

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        kinds = {404: ("not_found", "invalid_request_error"), 405: ("method_not_allowed", "invalid_request_error")}
        code, type_ = kinds.get(status, ("http_error", "invalid_request_error" if status < 500 else "server_error"))
        message = f"{request.method} {request.path}: {exc.description or exc.name}"
        if status == 404:
            message = f"unknown route {request.method} {request.path}"
        return Response(error_body(message, type_, code), status=status, content_type="application/json")

    @app.errorhandler(Exception)
    async def server_error(exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        return Response(
            error_body(f"internal error: {type(exc).__name__}: {exc}", "server_error", "internal_error"),
            status=500,
            content_type="application/json",
        )

    from hermit.plugins import present

    for module in present(ROUTE_MODULES):
        module.register(app, services, forwarder)
    return app


# Each defines register(app, services, forwarder); admin_routes also installs the admin-token guard.
ROUTE_MODULES = ("hermit.proxy.admin_routes", "hermit.proxy.analytics_routes")
