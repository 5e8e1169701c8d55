"""Service helpers the TUI needs: one DB thread, quick tests, activation, watch-mode reads.

Everything here that touches the database is synchronous and meant to run on `DbThread`
(one thread, one connection), never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Iterable, TypeVar

import httpx

from hermit.core.models import LedgerEntry, Profile
from hermit.services.events import ProfileActivated, RequestFinished
from hermit.services.probe import ProbeResult, probe
from hermit.services.profiles import Target

T = TypeVar("T")


class DbThread:
    """A single worker thread for the TUI's database calls (peewee connections are per thread)."""

    def __init__(self, name: str = "hermit-tui-db") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise RuntimeError("the database thread is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def close(self, db=None) -> None:
        """Close this thread's connection (if any) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        if db is not None:
            try:
                self._pool.submit(_close_db, db).result(5)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._pool.shutdown(wait=False)


def _close_db(db) -> None:
    if not db.is_closed():
        db.close()


# -- opening --------------------------------------------------------------------------------


def open_services(settings, *, watch_only: bool = False, bootstrap: bool = True):
    """Services for the TUI. Watch-only opens without migrating or bootstrapping (read mostly)."""
    from hermit.store.db import open_database
    from hermit.wiring import build_services

    if not watch_only:
        return build_services(settings, bootstrap=bootstrap)
    from hermit.services.profiles import ProfileService
    from hermit.services.secrets import SecretBox
    from hermit.wiring import Services

    db = open_database(settings.database_url, migrate=False)
    box = SecretBox(settings.env or {})
    return Services(settings=settings, db=db, box=box, profiles=ProfileService(settings, box))


def describe_database(url: str) -> str:
    """The database URL without its password."""
    from hermit.store.db import describe_url

    return describe_url(url)


def describe_open_error(exc: BaseException) -> str:
    """One plain sentence for a failure to open the database."""
    from hermit.cli.common import describe_failure

    return describe_failure(exc)[1]


# -- profiles -------------------------------------------------------------------------------


def profile_rows(services) -> list[dict[str, Any]]:
    """Profiles as JSON objects plus `last_used_ms` (newest ledger row of each profile)."""
    from peewee import fn

    from hermit.store.tables import LedgerRow

    last = dict(
        LedgerRow.select(LedgerRow.profile_id, fn.MAX(LedgerRow.created_at))
        .where(LedgerRow.profile_id.is_null(False))
        .group_by(LedgerRow.profile_id)
        .tuples()
    )
    out = []
    for profile in services.profiles.list():
        data = services.profiles.to_json(profile)
        data["last_used_ms"] = last.get(profile.id)
        out.append(data)
    return out


async def activate(services, db: DbThread, id_or_name: str | int, source: str = "tui") -> Profile:
    """Activate on the DB thread, then tell the bus (on the event loop, where subscribers expect it)."""
    profile = await db.call(services.profiles.activate, id_or_name, source)
    services.bus.publish(ProfileActivated(profile.id, profile.name, source))
    return profile


def record_entry(services, entry: LedgerEntry) -> None:
    """Ledger row of a quick test: through the running writer, else committed now (DB thread)."""
    if services.writer is not None:
        services.writer.submit(entry)
    else:
        from hermit.store import repos

        repos.insert_ledger([entry])


async def quick_test(services, target: Target, db: DbThread, client: httpx.AsyncClient | None = None) -> ProbeResult:
    """The quick test from async code; its ledger row is recorded and published like any request."""
    own = client is None
    client = client or httpx.AsyncClient(trust_env=False)
    try:
        result, entry = await probe(target, services.make_auth(client), client)
    finally:
        if own:
            await client.aclose()
    try:
        entry.cost_usd = services.price(entry)
    except Exception:  # noqa: BLE001 - unknown price stays null
        entry.cost_usd = None
    await db.call(record_entry, services, entry)
    services.bus.publish(RequestFinished(entry))
    return result


# -- ledger reads ---------------------------------------------------------------------------


def recent_entries(limit: int = 200) -> list[LedgerEntry]:
    """Newest first."""
    from hermit.store import repos

    return repos.recent_ledger(limit)


def ledger_watermark() -> int:
    """The newest ledger row id (0 when empty): a cheap 'did anything change' probe."""
    from peewee import fn

    from hermit.store.tables import LedgerRow

    return LedgerRow.select(fn.MAX(LedgerRow.id)).scalar() or 0


def entries_after(last_id: int, limit: int = 2000) -> list[LedgerEntry]:
    """Rows with id > last_id, oldest first (watch mode)."""
    from hermit.store import repos
    from hermit.store.tables import LedgerRow

    query = LedgerRow.select().where(LedgerRow.id > last_id).order_by(LedgerRow.id).limit(limit).dicts()
    return [repos.ledger_entry(row) for row in query]


def profiles_revision() -> int:
    from hermit.store import repos

    return repos.profiles_rev()


def file_signature(database_url: str) -> tuple | None:
    """(mtime, size) of an SQLite file and its WAL: changes when another process writes. None otherwise."""
    from hermit.store.db import sqlite_path

    path = sqlite_path(database_url)
    if path is None:
        return None
    sig = []
    for p in (path, path + "-wal"):
        try:
            st = os.stat(p)
            sig.append((st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append(None)
    return tuple(sig)


def insert_entries(entries: Iterable[LedgerEntry]) -> int:
    """Commit ledger rows now (sample data for screenshots, tests and the demo)."""
    from hermit.store import repos

    return repos.insert_ledger(list(entries))
