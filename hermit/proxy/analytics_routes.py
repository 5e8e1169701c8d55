"""/analytics/* and /prices: the same numbers as `hermit usage|report|prices`, as JSON.

Every database call runs on the server's database threads, never in the event loop. A
background task notices price overrides made by other processes (`hermit prices set`) within
a second, so the proxy prices rows written from then on with them.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import logging
from typing import Any, Callable

from quart import Quart, Response, request

from hermit.proxy.forward import error_body

log = logging.getLogger("hermit.analytics")
PRICE_POLL_SECONDS = 1.0
PRICE_FIELDS = ("model", "provider", "profile", "input", "output", "cached_input", "cache_write", "reasoning")
EXPORT_CHUNK = 1000


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json")


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
           param: str | None = None) -> Response:
    return Response(error_body(message, type_, code, param), status=status, content_type="application/json")


def _mapped(exc: BaseException) -> Response | None:
    from hermit.services.analytics import QueryError
    from hermit.services.pricing import PriceError, PriceNotFound
    from hermit.store.db import StoreError

    if isinstance(exc, QueryError):
        return _error(400, str(exc), code="invalid_value", param=exc.param)
    if isinstance(exc, PriceError):
        return _error(400, str(exc), code="invalid_value", param=exc.field)
    if isinstance(exc, PriceNotFound):
        return _error(404, str(exc), "not_found_error", "not_found")
    if isinstance(exc, StoreError):
        return _error(503, str(exc), "server_error", "database_unavailable")
    import peewee

    if isinstance(exc, peewee.OperationalError):
        return _error(503, f"database error: {exc}", "server_error", "database_unavailable")
    return None


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - known failures become OpenAI-shaped errors
            response = _mapped(exc)
            if response is None:
                raise
            return response

    return wrapper


def register(app: Quart, services, forwarder) -> None:
    from hermit.services.analytics import AnalyticsService, check_limit, make_query

    analytics = AnalyticsService()
    pricing = services.pricing
    if pricing is not None:
        try:
            pricing.load()  # before serving, so the first request never waits for the database
        except Exception as exc:  # noqa: BLE001 - unpriced until the watcher manages to load
            log.warning("could not load prices yet: %s", exc)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        executor = app.extensions.get("hermit.executor")
        return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args))

    def query():
        a = request.args
        return make_query(a.get("since"), a.get("until"), a.get("profile"), a.get("provider"), a.get("model"),
                          a.get("tz"))

    @app.get("/analytics/usage")
    @_guarded
    async def analytics_usage() -> Response:
        return _json(await run(analytics.usage, query()))

    @app.get("/analytics/summary")
    @_guarded
    async def analytics_summary() -> Response:
        return _json(await run(analytics.summary, query()))

    @app.get("/analytics/by-model")
    @_guarded
    async def analytics_by_model() -> Response:
        return _json(await run(analytics.by_model, query()))

    @app.get("/analytics/timeseries")
    @_guarded
    async def analytics_timeseries() -> Response:
        return _json(await run(analytics.timeseries, query(), request.args.get("bucket", "hour")))

    @app.get("/analytics/requests")
    @_guarded
    async def analytics_requests() -> Response:
        limit = check_limit(request.args.get("limit", "100"))
        return _json(await run(analytics.requests, query(), limit))

    @app.get("/analytics/export")
    @_guarded
    async def analytics_export() -> Response:
        from hermit.core.models import LEDGER_JSON_FIELDS
        from hermit.services.analytics import QueryError

        fmt = request.args.get("format", "csv")
        if fmt not in ("csv", "jsonl"):
            raise QueryError(f"format must be csv or jsonl, got {fmt!r}", "format")
        rows = analytics.iter_rows(query())

        def take() -> str:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
            for _, row in zip(range(EXPORT_CHUNK), rows):
                if writer is not None:
                    writer.writerow(["" if row[k] is None else str(row[k]).lower() if isinstance(row[k], bool)
                                     else row[k] for k in LEDGER_JSON_FIELDS])
                else:
                    out.write(json.dumps(row) + "\n")
            return out.getvalue()

        async def body():
            if fmt == "csv":
                yield (",".join(LEDGER_JSON_FIELDS) + "\n").encode()
            while True:
                chunk = await run(take)
                if not chunk:
                    return
                yield chunk.encode()

        content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
        response = Response(body(), status=200, content_type=content_type)
        response.timeout = None
        return response

    @app.get("/prices")
    @_guarded
    async def prices_list() -> Response:
        prices = await run(pricing.list, request.args.get("provider"), request.args.get("model"))
        return _json({"data": [p.to_json() for p in prices]})

    @app.post("/prices")
    @_guarded
    async def prices_create() -> Response:
        raw = await request.get_data()
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            return _error(400, f"request body is not valid JSON: {exc}", code="invalid_json")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object with model, input and output", code="invalid_body")
        unknown = [k for k in body if k not in PRICE_FIELDS]
        if unknown:
            return _error(400, f"unknown field {unknown[0]!r}; accepted fields: {', '.join(PRICE_FIELDS)}",
                          code="unknown_field", param=unknown[0])
        price = await run(functools.partial(pricing.set, **{k: body.get(k) for k in PRICE_FIELDS}))
        return _json(price.to_json(), 201)

    @app.delete("/prices/<price_id>")
    @_guarded
    async def prices_delete(price_id: str) -> Response:
        from hermit.services.pricing import PriceNotFound

        if not price_id.isdigit():
            raise PriceNotFound(f"no price override with id {price_id!r} "
                                "(bundled prices cannot be deleted, only overridden)")
        await run(pricing.delete, int(price_id))
        return Response("", status=204)

    async def watch_prices() -> None:
        while True:
            await asyncio.sleep(PRICE_POLL_SECONDS)
            try:
                if await run(pricing.refresh_if_changed):
                    log.info("price overrides changed; new rows use the new prices")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep pricing with the last table we had
                log.warning("could not check price overrides: %s", exc)

    @app.before_serving
    async def start_price_watch() -> None:
        if pricing is not None:
            app.extensions["hermit.price_watch"] = asyncio.get_running_loop().create_task(watch_prices())

    @app.after_serving
    async def stop_price_watch() -> None:
        task = app.extensions.pop("hermit.price_watch", None)
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
