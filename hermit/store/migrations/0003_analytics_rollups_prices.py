"""Price overrides, and 15-minute ledger rollups kept exact by triggers (SQLite and PostgreSQL).

Every insert, delete or update of a ledger row adds to or subtracts from the rollup row of its
slot, in the same transaction, whoever writes: the proxy, a prune, a bulk load or plain SQL.
Analytics read the rollups for whole slots and the raw rows only at the edges of a range.
"""

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    CompositeKey,
    Model,
    PostgresqlDatabase,
)

SLOT_MS = 900_000
KEY = ("bucket_start", "provider", "upstream_model", "profile_name")
METRICS = (
    "requests", "successful", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
    "reasoning_tokens", "cost_nanousd", "priced_requests", "unpriced_tokens", "latency_us", "quick_tests",
)


def row_values(p: str, postgres: bool) -> dict[str, str]:
    """SQL for one ledger row's contribution to each rollup column; `p` is NEW., OLD. or ''."""
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
        "quick_tests": f"CASE WHEN {p}client = 'hermit-quick-test' THEN 1 ELSE 0 END",
    }


def grouped_select(source: str, postgres: bool) -> str:
    """Rollup rows for every (slot, provider, model, profile) of the rows in `source`."""
    v = row_values("", postgres)
    keys = ", ".join(f"{v[k]} AS {k}" for k in KEY)
    sums = ", ".join(f"SUM({v[m]}) AS {m}" for m in METRICS)
    return f"SELECT {keys}, {sums} FROM {source} GROUP BY 1, 2, 3, 4"


COLUMNS = ", ".join(KEY + METRICS)
CONFLICT = ", ".join(KEY)


def _sqlite_sql() -> list[str]:
    def add(p: str) -> str:
        v = row_values(p, False)
        values = ", ".join(v[c] for c in KEY + METRICS)
        updates = ", ".join(f"{m} = {m} + excluded.{m}" for m in METRICS)
        return (
            f"INSERT INTO ledger_rollup ({COLUMNS}) VALUES ({values}) "
            f"ON CONFLICT ({CONFLICT}) DO UPDATE SET {updates};"
        )

    def sub(p: str) -> str:
        v = row_values(p, False)
        updates = ", ".join(f"{m} = {m} - {v[m]}" for m in METRICS)
        where = " AND ".join(f"{k} = {v[k]}" for k in KEY)
        return f"UPDATE ledger_rollup SET {updates} WHERE {where};"

    return [
        f"CREATE TRIGGER ledger_rollup_insert AFTER INSERT ON ledger BEGIN {add('NEW.')} END",
        f"CREATE TRIGGER ledger_rollup_delete AFTER DELETE ON ledger BEGIN {sub('OLD.')} END",
        f"CREATE TRIGGER ledger_rollup_update AFTER UPDATE ON ledger BEGIN {sub('OLD.')} {add('NEW.')} END",
    ]


def _postgres_sql() -> list[str]:
    add = (
        f"INSERT INTO ledger_rollup ({COLUMNS}) {grouped_select('hermit_new', True)} ORDER BY 1, 2, 3, 4 "
        f"ON CONFLICT ({CONFLICT}) DO UPDATE SET "
        + ", ".join(f"{m} = ledger_rollup.{m} + EXCLUDED.{m}" for m in METRICS)
        + ";"
    )
    sub = (
        "UPDATE ledger_rollup AS r SET "
        + ", ".join(f"{m} = r.{m} - d.{m}" for m in METRICS)
        + f" FROM ({grouped_select('hermit_old', True)}) AS d WHERE "
        + " AND ".join(f"r.{k} = d.{k}" for k in KEY)
        + ";"
    )

    def function(name: str, body: str) -> str:
        return (
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $hermit$ "
            f"BEGIN {body} RETURN NULL; END $hermit$"
        )

    return [
        function("hermit_ledger_rollup_insert", add),
        function("hermit_ledger_rollup_delete", sub),
        function("hermit_ledger_rollup_update", sub + " " + add),
        "CREATE TRIGGER ledger_rollup_insert AFTER INSERT ON ledger REFERENCING NEW TABLE AS hermit_new "
        "FOR EACH STATEMENT EXECUTE FUNCTION hermit_ledger_rollup_insert()",
        "CREATE TRIGGER ledger_rollup_delete AFTER DELETE ON ledger REFERENCING OLD TABLE AS hermit_old "
        "FOR EACH STATEMENT EXECUTE FUNCTION hermit_ledger_rollup_delete()",
        "CREATE TRIGGER ledger_rollup_update AFTER UPDATE ON ledger "
        "REFERENCING OLD TABLE AS hermit_old NEW TABLE AS hermit_new "
        "FOR EACH STATEMENT EXECUTE FUNCTION hermit_ledger_rollup_update()",
    ]


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class PriceOverrides(Base):
        id = AutoField()
        model = CharField(max_length=300)
        provider = CharField(max_length=64, default="")
        profile = CharField(max_length=200, default="")
        input_nano = BigIntegerField()
        output_nano = BigIntegerField()
        cached_input_nano = BigIntegerField(null=True)
        cache_write_nano = BigIntegerField(null=True)
        reasoning_nano = BigIntegerField(null=True)
        created_at = BigIntegerField()
        updated_at = BigIntegerField()

        class Meta:
            table_name = "price_overrides"
            indexes = ((("model", "provider", "profile"), True),)

    class LedgerRollup(Base):
        bucket_start = BigIntegerField()
        provider = CharField(max_length=64)
        upstream_model = CharField(max_length=300)
        profile_name = CharField(max_length=200, default="")
        requests = BigIntegerField(default=0)
        successful = BigIntegerField(default=0)
        prompt_tokens = BigIntegerField(default=0)
        completion_tokens = BigIntegerField(default=0)
        total_tokens = BigIntegerField(default=0)
        cached_tokens = BigIntegerField(default=0)
        reasoning_tokens = BigIntegerField(default=0)
        cost_nanousd = BigIntegerField(default=0)
        priced_requests = BigIntegerField(default=0)
        unpriced_tokens = BigIntegerField(default=0)
        latency_us = BigIntegerField(default=0)
        quick_tests = BigIntegerField(default=0)

        class Meta:
            table_name = "ledger_rollup"
            primary_key = CompositeKey("bucket_start", "provider", "upstream_model", "profile_name")

    db.create_tables([PriceOverrides, LedgerRollup])
    postgres = isinstance(db, PostgresqlDatabase)
    if postgres:
        # peewee's FloatField is REAL (6 digits) on PostgreSQL: latencies and costs need doubles.
        for column in ("latency_ms", "ttft_ms", "overhead_ms", "upstream_cost_usd"):
            db.execute_sql(f"ALTER TABLE ledger ALTER COLUMN {column} TYPE DOUBLE PRECISION")
    db.execute_sql(f"INSERT INTO ledger_rollup ({COLUMNS}) {grouped_select('ledger', postgres)}")
    for sql in _postgres_sql() if postgres else _sqlite_sql():
        db.execute_sql(sql)
