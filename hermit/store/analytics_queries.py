"""SQL aggregates over the ledger: rollup slots for whole 15-minute spans, raw rows at the edges.

Every function runs one SQL statement per answer (a UNION ALL of the pieces), so a report is
one consistent snapshot on SQLite and PostgreSQL alike, and no Python loop ever walks the rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator

import peewee

from hermit.store.tables import LedgerRow, database

SLOT_MS = 900_000  # the rollup's slot: every real time zone offset is a multiple of 15 minutes
MINUTE_MS = 60_000
QUICK_TEST_CLIENT = "hermit-quick-test"
KEY = ("bucket_start", "provider", "upstream_model", "profile_name")
METRICS = (
    "requests", "successful", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
    "reasoning_tokens", "cost_nanousd", "priced_requests", "unpriced_tokens", "latency_us", "quick_tests",
)


def row_values(p: str, postgres: bool) -> dict[str, str]:
    """One ledger row's contribution to each rollup column (the same SQL the triggers run)."""
    latency = (
        f"CAST(ROUND(CAST(COALESCE({p}latency_ms, 0) AS NUMERIC) * 1000) AS BIGINT)"
        if postgres
        else f"CAST(ROUND(COALESCE({p}latency_ms, 0) * 1000) AS INTEGER)"
    )
    return {
        "bucket_start": f"(({p}created_at / {SLOT_MS}) * {SLOT_MS})",  # times are after 1970
        "provider": f"{p}provider",
        "upstream_model": f"{p}upstream_model",
        "profile_name": f"COALESCE({p}profile_name, '')",
        "requests": "1",
        "successful": f"CASE WHEN {p}status_code < 400 AND {p}error IS NULL THEN 1 ELSE 0 END",
        "prompt_tokens": f"COALESCE({p}prompt_tokens, 0)",
        "completion_tokens": f"COALESCE({p}completion_tokens, 0)",
        "total_tokens": f"COALESCE({p}total_tokens, 0)",
        "cached_tokens": f"COALESCE({p}cached_tokens, 0)",
        "reasoning_tokens": f"COALESCE({p}reasoning_tokens, 0)",
        "cost_nanousd": f"COALESCE({p}cost_nanousd, 0)",
        "priced_requests": f"CASE WHEN {p}cost_nanousd IS NULL THEN 0 ELSE 1 END",
        "unpriced_tokens": f"CASE WHEN {p}cost_nanousd IS NULL THEN COALESCE({p}total_tokens, 0) ELSE 0 END",
        "latency_us": latency,
        "quick_tests": f"CASE WHEN {p}client = '{QUICK_TEST_CLIENT}' THEN 1 ELSE 0 END",
    }


@dataclass(frozen=True)
class Scope:
    """Which rows: [since, until) in epoch ms (None: open) and exact-match filters."""

    since: int | None = None
    until: int | None = None
    profile: str | None = None
    provider: str | None = None
    model: str | None = None

    def with_range(self, since: int | None, until: int | None) -> "Scope":
        return Scope(since, until, self.profile, self.provider, self.model)


def _db() -> peewee.Database:
    return database.obj


def is_postgres(db: peewee.Database | None = None) -> bool:
    return isinstance(db or _db(), peewee.PostgresqlDatabase)


def _ceil(t: int, step: int) -> int:
    return -((-t) // step) * step


def plan(since: int | None, until: int | None) -> list[tuple[str, int | None, int | None]]:
    """Split [since, until) into raw edges and whole rollup slots."""
    if since is not None and until is not None and since >= until:
        return []
    a = None if since is None else _ceil(since, SLOT_MS)
    b = None if until is None else (until // SLOT_MS) * SLOT_MS
    if a is not None and b is not None and a >= b:
        return [("raw", since, until)]
    pieces: list[tuple[str, int | None, int | None]] = []
    if since is not None and since < a:
        pieces.append(("raw", since, a))
    pieces.append(("rollup", a, b))
    if until is not None and b < until:
        pieces.append(("raw", b, until))
    return pieces


def _where(source: str, lo: int | None, hi: int | None, scope: Scope, param: str) -> tuple[str, list[Any]]:
    column = "created_at" if source == "raw" else "bucket_start"
    parts, params = [], []
    if lo is not None:
        parts.append(f"{column} >= {param}")
        params.append(lo)
    if hi is not None:
        parts.append(f"{column} < {param}")
        params.append(hi)
    filters = (("profile_name", scope.profile), ("provider", scope.provider), ("upstream_model", scope.model))
    for column_name, value in filters:
        if value is not None:
            parts.append(f"{column_name} = {param}")
            params.append(value)
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def _piece_sql(source: str, group: str | None, postgres: bool, granule_ms: int) -> tuple[str, str]:
    """(select list, group-by clause) for one piece."""
    if source == "raw":
        v = row_values("", postgres)
        sums = [("COUNT(*)" if m == "requests" else f"SUM({v[m]})") for m in METRICS]
        granule = f"((created_at / {int(granule_ms)}) * {int(granule_ms)})"
    else:
        sums = [f"SUM({m})" for m in METRICS]
        g = int(granule_ms)
        granule = "bucket_start" if g == SLOT_MS else f"((bucket_start / {g}) * {g})"
    if group is None:
        return ", ".join(sums), ""
    if group == "model":
        return "provider, upstream_model, " + ", ".join(sums), " GROUP BY provider, upstream_model"
    if group == "granule":
        return f"{granule} AS g, " + ", ".join(sums), f" GROUP BY {granule}"
    raise ValueError(group)


def aggregate(scope: Scope, group: str | None = None, *, raw_only: bool = False,
              granule_ms: int = SLOT_MS) -> list[tuple]:
    """Sums of METRICS over the scope, as rows of (group keys..., metrics...) with ints.

    group: None (one row), "model" (provider, upstream_model) or "granule": the start of each
    `granule_ms` span (a whole number of minutes; of slots unless raw_only) that has rows, which
    the caller maps to its buckets. The coarser the granule, the fewer rows leave the database.
    """
    if group == "granule" and (granule_ms % MINUTE_MS or (not raw_only and granule_ms % SLOT_MS)):
        raise ValueError(f"granule of {granule_ms} ms does not fit the sources")
    db = _db()
    postgres = is_postgres(db)
    pieces = [("raw", scope.since, scope.until)] if raw_only else plan(scope.since, scope.until)
    if not pieces:
        return []
    selects, params = [], []
    for source, lo, hi in pieces:
        columns, group_by = _piece_sql(source, group, postgres, granule_ms)
        table = "ledger" if source == "raw" else "ledger_rollup"
        where, p = _where(source, lo, hi, scope, db.param)
        selects.append(f"SELECT {columns} FROM {table}{where}{group_by}")
        params.extend(p)
    sql = " UNION ALL ".join(selects)
    keys = {None: 0, "model": 2, "granule": 1}[group]
    merged: dict[tuple, list[int]] = {}
    for row in db.execute_sql(sql, params).fetchall():
        key = tuple(row[:keys])
        values = [int(x or 0) for x in row[keys:]]
        if key in merged:
            acc = merged[key]
            for i, x in enumerate(values):
                acc[i] += x
        else:
            merged[key] = values
    return [key + tuple(values) for key, values in merged.items()]


def earliest(scope: Scope) -> int | None:
    """The created_at of the first row in scope (rollup to find the slot, raw rows inside it)."""
    db = _db()
    where, params = _where("rollup", scope.since, scope.until, scope, db.param)
    where = (where + " AND " if where else " WHERE ") + "requests > 0"
    row = db.execute_sql(f"SELECT MIN(bucket_start) FROM ledger_rollup{where}", params).fetchone()
    if row is None or row[0] is None:
        return None
    slot = int(row[0])
    lo = slot if scope.since is None else max(slot, scope.since)
    hi = slot + SLOT_MS if scope.until is None else min(slot + SLOT_MS, scope.until)
    where, params = _where("raw", lo, hi, scope, db.param)
    row = db.execute_sql(f"SELECT MIN(created_at) FROM ledger{where}", params).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _row_filter(query, scope: Scope, lo: int | None = None):
    since = scope.since if lo is None else (lo if scope.since is None else max(lo, scope.since))
    if since is not None:
        query = query.where(LedgerRow.created_at >= since)
    if scope.until is not None:
        query = query.where(LedgerRow.created_at < scope.until)
    if scope.profile is not None:
        query = query.where(LedgerRow.profile_name == scope.profile)
    if scope.provider is not None:
        query = query.where(LedgerRow.provider == scope.provider)
    if scope.model is not None:
        query = query.where(LedgerRow.upstream_model == scope.model)
    return query


def recent(scope: Scope, limit: int) -> list[dict]:
    """The newest `limit` rows in scope, newest first, as column dicts.

    With a profile/provider/model filter the rollup tells from which slot on there are
    enough matching rows, so a rare model never makes the index scan walk the whole ledger.
    """
    lower = None
    if limit > 0 and any(v is not None for v in (scope.profile, scope.provider, scope.model)):
        db = _db()
        lo = None if scope.since is None else (scope.since // SLOT_MS) * SLOT_MS
        where, params = _where("rollup", lo, scope.until, scope, db.param)
        cursor = db.execute_sql(
            f"SELECT bucket_start, SUM(requests) FROM ledger_rollup{where} GROUP BY bucket_start "
            "ORDER BY bucket_start DESC",
            params,
        )
        seen = 0
        for slot, count in cursor:
            seen += int(count or 0)
            lower = int(slot)
            if seen >= limit:
                break
        cursor.close()
        if seen == 0:
            return []
    query = _row_filter(LedgerRow.select(), scope, lower)
    query = query.order_by(LedgerRow.created_at.desc(), LedgerRow.id.desc()).limit(limit)
    return list(query.dicts())


def iter_rows(scope: Scope, columns: tuple[str, ...], chunk: int = 5000) -> Iterator[tuple]:
    """Rows in scope oldest first, as tuples of `columns`, fetched in keyset pages: constant
    memory, short queries, and each page starts with an index seek."""
    db = _db()
    p = db.param
    select = ", ".join(f'"{c}"' for c in columns) + ", created_at, id"
    base, params = _where("raw", scope.since, scope.until, scope, p)
    last: tuple[int, int] | None = None
    while True:
        where, args = base, list(params)
        if last is not None:
            where += (" AND " if where else " WHERE ") + f"created_at >= {p} AND (created_at > {p} OR id > {p})"
            args += [last[0], last[0], last[1]]
        rows = db.execute_sql(
            f"SELECT {select} FROM ledger{where} ORDER BY created_at, id LIMIT {int(chunk)}", args
        ).fetchall()
        for row in rows:
            yield row[:-2]
        if len(rows) < chunk:
            return
        last = (rows[-1][-2], rows[-1][-1])


def count_before(before: int) -> int:
    return LedgerRow.select().where(LedgerRow.created_at < before).count()


def prune(before: int, batch_size: int = 5000, pause: float = 0.02) -> tuple[int, int]:
    """Delete rows older than `before` in short transactions; returns (rows, batches).

    Each batch holds the write lock for a few milliseconds, and the pause between batches
    lets the proxy's ledger writer in. Triggers keep the rollups right as rows go.
    """
    db = _db()
    deleted = batches = 0
    while True:
        with db.atomic():
            ids = (
                LedgerRow.select(LedgerRow.id)
                .where(LedgerRow.created_at < before)
                .order_by(LedgerRow.created_at, LedgerRow.id)
                .limit(batch_size)
            )
            n = LedgerRow.delete().where(LedgerRow.id.in_(ids)).execute()
        if n == 0:
            break
        deleted += n
        batches += 1
        if n < batch_size:
            break
        if pause:
            time.sleep(pause)
    with db.atomic():
        db.execute_sql(f"DELETE FROM ledger_rollup WHERE requests = 0 AND bucket_start < {db.param}",
                       [before + SLOT_MS])
    return deleted, batches


def _grouped_raw(postgres: bool) -> str:
    v = row_values("", postgres)
    keys = ", ".join(f"{v[k]} AS {k}" for k in KEY)
    sums = ", ".join(f"SUM({v[m]}) AS {m}" for m in METRICS)
    return f"SELECT {keys}, {sums} FROM ledger GROUP BY 1, 2, 3, 4"


def rollup_mismatches(limit: int = 20) -> tuple[int, list[dict]]:
    """Compare every rollup row with the raw rows it sums; returns (groups checked, differences)."""
    db = _db()
    raw = {tuple(r[:4]): [int(x or 0) for x in r[4:]] for r in db.execute_sql(_grouped_raw(is_postgres(db))).fetchall()}
    rolled = {
        tuple(r[:4]): [int(x or 0) for x in r[4:]]
        for r in db.execute_sql(f"SELECT {', '.join(KEY + METRICS)} FROM ledger_rollup").fetchall()
    }
    zero = [0] * len(METRICS)
    problems = []
    for key in sorted(set(raw) | set(rolled), key=lambda k: tuple(str(x) for x in k)):
        want, have = raw.get(key, zero), rolled.get(key, zero)
        if want != have:
            diff = {m: (w, h) for m, w, h in zip(METRICS, want, have) if w != h}
            problems.append({"slot": key[0], "provider": key[1], "model": key[2], "profile": key[3],
                             "raw_vs_rollup": diff})
            if len(problems) >= limit:
                break
    return len(raw), problems


def rebuild_rollups() -> int:
    """Recompute the rollups from the raw rows (a repair; never needed while triggers run)."""
    db = _db()
    with db.atomic():
        db.execute_sql("DELETE FROM ledger_rollup")
        db.execute_sql(f"INSERT INTO ledger_rollup ({', '.join(KEY + METRICS)}) {_grouped_raw(is_postgres(db))}")
        return int(db.execute_sql("SELECT COUNT(*) FROM ledger_rollup").fetchone()[0])
