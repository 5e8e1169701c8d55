"""Open the database named by a URL, tune it, and bring its schema up to date."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import peewee
from playhouse.migrations import Runner

from hermit.store.tables import database

MIGRATIONS_DIR = str(Path(__file__).with_name("migrations"))
BUSY_TIMEOUT_MS = 10_000
_lock = threading.Lock()


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says why in plain words."""


def migration_names() -> list[str]:
    return sorted(p.stem for p in Path(MIGRATIONS_DIR).glob("[0-9]*.py"))


def latest_schema_version() -> int:
    return len(migration_names())


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(":" + parsed.password + "@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


def _connect(url: str) -> peewee.Database:
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        raw = url[len("sqlite://"):]
        path = raw[1:] if raw.startswith("/") else raw
        if path in ("", ":memory:"):
            path = ":memory:"
        else:
            path = unquote(path)
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot open database {url}: folder {parent} does not exist")
            path = str(Path(path).expanduser())
        return peewee.SqliteDatabase(
            path,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": BUSY_TIMEOUT_MS,
                "synchronous": "normal",
                "foreign_keys": 1,
                "cache_size": -16_000,
            },
            timeout=BUSY_TIMEOUT_MS / 1000,
            lock_type="IMMEDIATE",  # writers queue on busy_timeout instead of failing on upgrade
        )
    if scheme in ("postgres", "postgresql", "postgresql+psycopg2"):
        try:
            import psycopg2  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the driver is a dependency
            raise StoreError(f"PostgreSQL needs psycopg2: {exc}") from None
        return peewee.PostgresqlDatabase(
            unquote(parsed.path.lstrip("/")),
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname or None,
            port=parsed.port or None,
        )
    raise StoreError(
        f"unsupported database URL {describe_url(url)!r}: use sqlite:///PATH or postgresql://user:pass@host:port/db"
    )


def open_database(url: str, *, migrate: bool = True, target: str | None = None) -> peewee.Database:
    """Open `url`, bind the table models to it and apply pending migrations."""
    with _lock:
        db = _connect(url)
        try:
            db.connect(reuse_if_open=True)
        except peewee.OperationalError as exc:
            raise StoreError(f"cannot open database {describe_url(url)}: {_reason(exc)}") from None
        database.initialize(db)
        if migrate:
            try:
                upgrade(db, target=target)
            except peewee.OperationalError as exc:
                raise StoreError(f"cannot prepare database {describe_url(url)}: {_reason(exc)}") from None
        return db


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "database is locked" in text:
        return "the database is locked by another process (timed out waiting)"
    return text


def schema_version(db: peewee.Database) -> int:
    runner = Runner(db, directory=MIGRATIONS_DIR)
    return len(runner.applied())


def upgrade(db: peewee.Database, target: str | None = None) -> list[str]:
    """Apply pending migrations under a database-wide lock; returns their names."""
    runner = Runner(db, directory=MIGRATIONS_DIR)
    if target is None and len(runner.applied()) == latest_schema_version():
        return []
    if isinstance(db, peewee.SqliteDatabase):
        with db.atomic("IMMEDIATE"):
            applied = runner.up(target)
    else:
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(774411)")
            applied = runner.up(target)
    if applied:
        _record_version(db, len(runner.applied()))
    return applied


def _record_version(db: peewee.Database, version: int) -> None:
    from hermit.store.tables import AppStateRow

    AppStateRow.insert(key="schema_version", value=str(version)).on_conflict(
        conflict_target=[AppStateRow.key], update={AppStateRow.value: str(version)}
    ).execute()


def close_database() -> None:
    db = database.obj
    if db is not None and not db.is_closed():
        db.close()


def sqlite_path(url: str) -> str | None:
    if urlparse(url).scheme.lower() != "sqlite":
        return None
    raw = url[len("sqlite://"):]
    path = raw[1:] if raw.startswith("/") else raw
    return os.path.abspath(path) if path and path != ":memory:" else None
