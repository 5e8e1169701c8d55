"""Run storage, ledger and analytics tests on SQLite and PostgreSQL.

`db_url` is parametrized over both. PostgreSQL comes from HERMIT_TEST_POSTGRES_URL (a server
.ci/run starts): each test gets a fresh database cloned from a migrated template and dropped
afterwards. Without the variable the PostgreSQL cases skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

POSTGRES_URL = os.environ.get("HERMIT_TEST_POSTGRES_URL", "").strip()
BACKENDS = ("sqlite", "postgresql")
_template: dict[str, str] = {}


def require_postgres() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail("CI=true but HERMIT_TEST_POSTGRES_URL is unset: .ci/run starts PostgreSQL and sets it")
    pytest.skip("PostgreSQL tests need HERMIT_TEST_POSTGRES_URL (`.ci/run` starts a server and sets it)")


def _with_db(url: str, name: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/" + name))


def _admin():
    import psycopg2

    conn = psycopg2.connect(_with_db(require_postgres(), "postgres"))
    conn.autocommit = True
    return conn


def _template_name() -> str:
    """A database with every migration applied, cloned by each test (much faster than migrating)."""
    if "name" not in _template:
        from hermit.store.db import close_database, open_database

        name = f"hermit_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        conn = _admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        db = open_database(_with_db(require_postgres(), name))
        db.close()
        close_database()
        _template["name"] = name
    return _template["name"]


def fresh_postgres_url(migrated: bool = True) -> str:
    name = f"hermit_t_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_template_name()}"' if migrated else ""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"{template}')
    finally:
        conn.close()
    return _with_db(require_postgres(), name)


def drop_postgres(url: str) -> None:
    name = urlparse(url).path.lstrip("/")
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def drop_template() -> None:
    name = _template.pop("name", None)
    if name:
        drop_postgres(_with_db(POSTGRES_URL, name))


def make_url(backend: str, tmp_path: Path, migrated: bool = True) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'hermit-{uuid.uuid4().hex[:6]}.db'}"
    return fresh_postgres_url(migrated)


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A fresh, empty, migrated database URL: SQLite file or PostgreSQL database."""
    url = make_url(request.param, tmp_path)
    yield url
    if request.param == "postgresql":
        from hermit.store.db import close_database

        close_database()
        drop_postgres(url)


@pytest.fixture
def store(db_url):
    """db_url opened and bound to the table models (closed afterwards)."""
    from hermit.store.db import close_database, open_database

    db = open_database(db_url)
    yield db
    close_database()


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_template():
    yield
    if POSTGRES_URL and _template:
        drop_template()
