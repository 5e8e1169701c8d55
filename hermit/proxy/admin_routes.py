"""Management and analytics routes (JSON), guarded by HERMIT_ADMIN_TOKEN when it is set."""

from __future__ import annotations

import hmac

from quart import Quart, Response, request

from hermit.proxy.forward import error_body

GUARDED_PREFIXES = ("/profiles", "/auth-profiles", "/prices", "/analytics", "/config")


def register(app: Quart, services, forwarder) -> None:
    token = services.settings.admin_token

    @app.before_request
    async def require_admin() -> Response | None:
        if token is None or not request.path.startswith(GUARDED_PREFIXES):
            return None
        given = request.headers.get("authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip(), token):
            return None
        return Response(
            error_body("missing or wrong admin token: send Authorization: Bearer <HERMIT_ADMIN_TOKEN>",
                       "authentication_error", "invalid_admin_token"),
            status=401,
            content_type="application/json",
        )
