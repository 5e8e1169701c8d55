"""Export streams every row in order; prune deletes in batches beside a live writer; rollups stay right."""

from __future__ import annotations

import csv
import io
import json
import threading
import time

import analytics_oracle as oracle
from conftest import cli_json
from db_support import _drop_postgres_template, db_url, store  # noqa: F401 - fixtures
from hermit.core.models import LEDGER_JSON_FIELDS
from hermit.services.analytics import AnalyticsService, make_query
from hermit.services.ledger import LedgerWriter
from hermit.store import analytics_queries as q
from hermit.store import repos

DAY = 86_400_000
START = oracle.ms("2026-02-01T00:00:00Z")


def _write(url, entries):
    from hermit.store.db import close_database, open_database

    open_database(url)
    repos.insert_ledger(entries)
    close_database()


def test_keyset_pages_return_every_row_once_in_order(store):
    same_ms = [START + 5000] * 7  # ties on created_at across page boundaries
    data = oracle.make_rows(1, 120, START, DAY, tuple(same_ms))
    repos.insert_ledger(data)
    scope = make_query(since="2026-02-01T00:00:00.001").scope
    got = list(q.iter_rows(scope, ("id", "created_at", "request_id"), chunk=4))
    want = oracle.select(data, START + 1)
    assert len(got) == len(want) and len({r[0] for r in got}) == len(got)
    assert [r[1] for r in got] == sorted(r.created_at for r in want)
    service_rows = list(AnalyticsService().iter_rows(make_query()))
    by_id = {r["id"]: r for r in service_rows}
    for e in repos.recent_ledger(1000):
        assert by_id[e.id] == e.to_json()


def test_export_csv_and_jsonl_with_filters(cli, db_url, tmp_path):
    data = oracle.make_rows(2, 250, START, 3 * DAY)
    _write(db_url, data)
    env = {"HERMIT_DATABASE_URL": db_url}
    result = cli("export", env=env)
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0]) == list(LEDGER_JSON_FIELDS) and len(table) == len(data)
    assert sum(int(r["total_tokens"]) for r in table) == sum(r.total_tokens for r in data)
    assert {r["stream"] for r in table} == {"true", "false"}
    assert sum(1 for r in table if r["cost_usd"] == "") == sum(1 for r in data if r.cost_usd is None)

    out = tmp_path / "rows.jsonl"
    summary = cli_json(
        cli(
            "export",
            "--format",
            "jsonl",
            "--output",
            str(out),
            "--model",
            "gpt-4o",
            "--since",
            "2026-02-02",
            "--json",
            env=env,
        )
    )
    want = oracle.select(data, oracle.ms("2026-02-02T00:00:00Z"), model="gpt-4o")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary == {"rows": len(want), "format": "jsonl", "output": str(out)}
    assert sorted(r["request_id"] for r in lines) == sorted(r.request_id for r in want)
    assert set(lines[0]) == set(LEDGER_JSON_FIELDS)

    whole = json.loads(cli("export", "--json", "--provider", "ollama", env=env).stdout)
    assert len(whole["data"]) == len(oracle.select(data, provider="ollama"))
    missing = cli("export", "--output", str(tmp_path / "no" / "such" / "dir.csv"), env=env)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_prune_deletes_old_rows_in_batches_and_keeps_rollups_right(cli, db_url):
    data = oracle.make_rows(3, 400, START, 4 * DAY)
    _write(db_url, data)
    env = {"HERMIT_DATABASE_URL": db_url}
    before = "2026-02-03T07:30:00"
    dry = cli_json(cli("ledger", "prune", "--before", before, "--dry-run", "--json", env=env))
    old = oracle.select(data, until=oracle.ms(before + "Z"))
    assert dry["would_delete"] == len(old) and dry["deleted"] == 0
    done = cli_json(cli("ledger", "prune", "--before", before, "--batch-size", "50", "--json", env=env))
    assert done["deleted"] == len(old) and done["batches"] == -(-len(old) // 50)
    assert done["before"] == "2026-02-03T07:30:00Z"
    kept = oracle.select(data, since=oracle.ms(before + "Z"))
    assert cli_json(cli("report", "--json", env=env)) == oracle.summary(kept)
    assert cli_json(cli("ledger", "verify", "--json", env=env))["ok"] is True
    assert cli("ledger", "prune", env=env).returncode == 2  # --before is required
    assert cli("ledger", "prune", "--before", "someday", env=env).returncode == 2


def test_prune_beside_a_busy_writer_loses_nothing(store):
    old = oracle.make_rows(4, 1500, START, DAY)
    repos.insert_ledger(old)
    writer = LedgerWriter()
    fresh = oracle.make_rows(5, 1500, START + 10 * DAY, DAY)
    stop = threading.Event()
    commit_gaps: list[float] = []

    def produce():
        last = time.perf_counter()
        for i, e in enumerate(fresh):
            writer.submit(e)
            if i % 100 == 99:
                writer.flush(10)
                now = time.perf_counter()
                commit_gaps.append(now - last)
                last = now
        stop.set()

    thread = threading.Thread(target=produce)
    thread.start()
    deleted, batches = q.prune(START + 5 * DAY, batch_size=100, pause=0.001)
    thread.join(30)
    writer.close()
    assert stop.is_set() and deleted == len(old) and batches >= 15
    assert max(commit_gaps) < 5, "the writer waited too long behind the prune"
    service = AnalyticsService()
    assert service.summary(make_query()) == oracle.summary(fresh)
    assert q.rollup_mismatches()[1] == []


def test_upgrade_from_the_previous_schema_fills_the_rollups(db_url, request):
    """A ledger written before this schema existed gets its rollups from the raw rows."""
    from hermit.store import db as store_db
    from hermit.store.db import close_database, open_database

    if db_url.startswith("postgresql"):
        from db_support import drop_postgres, fresh_postgres_url

        db_url = fresh_postgres_url(migrated=False)
        request.addfinalizer(lambda: drop_postgres(db_url))
    else:
        db_url = db_url.replace(".db", "-old.db")
    open_database(db_url, target=store_db.migration_names()[1])
    data = oracle.make_rows(6, 300, START, 2 * DAY)
    repos.insert_ledger(data)
    close_database()
    open_database(db_url)
    assert q.rollup_mismatches()[1] == []
    assert AnalyticsService().summary(make_query()) == oracle.summary(data)
    close_database()
