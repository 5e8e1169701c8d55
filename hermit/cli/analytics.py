"""`hermit usage`, `report`, `prices`, `export` and `ledger prune|verify`.

These commands open the database directly (no profile bootstrap, no HTTP stack), so
`hermit usage` starts fast; the numbers come from hermit.services.analytics like everywhere else.
"""

from __future__ import annotations

import argparse

M = "hermit.cli.analytics:"

REPORT_EPILOG = """\
views:
  summary     totals over the range: requests, successes and failures, prompt, completion,
              cached and reasoning tokens, cost (and what is unpriced), average latency
  by-model    the same totals per provider and upstream model, largest total_tokens first
  timeseries  requests, tokens and cost per --bucket (minute, hour, day, week, month) in
              --tz, oldest first, empty buckets shown as zeros
  recent      the newest --requests-limit ledger rows, newest first, one line per request

times: ISO 8601 (2026-04-01T09:30:00, with an offset or without: then in --tz, default UTC),
a date (2026-04-01), now, today, yesterday, or an age such as 15m, 24h, 7d.
Quick-test rows (client hermit-quick-test) are counted like any request; summary shows how many.
"""


def _filters(p: argparse.ArgumentParser, times: bool = True) -> None:
    if times:
        p.add_argument("--since", metavar="T", help="from this time (inclusive)")
        p.add_argument("--until", metavar="T", help="to this time (exclusive; default now)")
    p.add_argument("--profile", metavar="P", help="only rows of this profile (name, or id)")
    p.add_argument("--provider", metavar="P", help="only rows of this provider")
    p.add_argument("--model", metavar="M", help="only rows of this upstream model")
    p.add_argument("--tz", metavar="ZONE", help="zone for buckets and for times without an offset: "
                   "UTC (default), local, +05:30, Europe/Paris")


def register(sub, add) -> None:
    from hermit.cli import Parser

    p = add(sub, "usage", M + "usage", "total tokens up (prompt) and down (completion), requests, cost")
    _filters(p)

    p = add(sub, "report", M + "report", "token and cost analysis: summary, by-model, timeseries, recent",
            epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--view", choices=("summary", "by-model", "timeseries", "recent"), default="summary",
                   help="what to show (default summary; see below)")
    p.add_argument("--bucket", choices=("minute", "hour", "day", "week", "month"), default="hour",
                   help="timeseries bucket (default hour)")
    p.add_argument("--requests-limit", type=int, default=20, metavar="N", help="rows for --view recent (default 20)")
    _filters(p)

    prices = add(sub, "prices", "help:prices", "model prices: bundled table plus your overrides")
    psub = prices.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    p = add(psub, "list", M + "prices_list", "effective prices, each with its source and date")
    p.add_argument("--provider", help="only this provider's prices")
    p.add_argument("--model", help="only models whose name contains this")
    p = add(psub, "set", M + "prices_set",
            "override a model's price (USD per million tokens) for rows written from now on")
    p.add_argument("model", metavar="MODEL", help="the model name sent upstream ('*' matches any)")
    p.add_argument("--input", required=True, metavar="USD", help="per million input (prompt) tokens")
    p.add_argument("--output", required=True, metavar="USD", help="per million output (completion) tokens")
    p.add_argument("--cached-input", metavar="USD", help="per million cached input tokens (default: the input rate)")
    p.add_argument("--cache-write", metavar="USD", help="per million cache-write tokens (default: the input rate)")
    p.add_argument("--reasoning", metavar="USD", help="per million reasoning tokens (default: the output rate)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--provider", help="only for this provider")
    scope.add_argument("--profile", metavar="NAME", help="only for this profile")
    p = add(psub, "unset", M + "prices_unset", "drop an override (the bundled price applies again)")
    p.add_argument("model", metavar="MODEL")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--provider")
    scope.add_argument("--profile", metavar="NAME")

    p = add(sub, "export", M + "export", "stream ledger rows as CSV or JSON Lines, for spreadsheets and BI tools")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="default csv")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    _filters(p)

    ledger = add(sub, "ledger", "help:ledger", "ledger maintenance: prune old rows, verify rollups")
    lsub = ledger.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    p = add(lsub, "prune", M + "ledger_prune", "delete rows older than T, in batches, while the proxy runs")
    p.add_argument("--before", required=True, metavar="T", help="a time (ISO 8601, date) or an age such as 90d")
    p.add_argument("--batch-size", type=int, default=5000, metavar="N", help="rows per transaction (default 5000)")
    p.add_argument("--dry-run", action="store_true", help="only count the rows that would go")
    p.add_argument("--tz", metavar="ZONE", help="zone for a time without an offset (default UTC)")
    p = add(lsub, "verify", M + "ledger_verify", "check that the analytics rollups match the raw rows")
    p.add_argument("--repair", action="store_true", help="rebuild the rollups from the raw rows if they differ")


# -- shared ---------------------------------------------------------------------------------


def _open(args):
    from hermit.cli.common import settings_from
    from hermit.store.db import open_database

    return open_database(settings_from(args).database_url)


def _query(args, command: str):
    from hermit.cli import UsageError
    from hermit.services.analytics import QueryError, make_query

    try:
        return make_query(getattr(args, "since", None), getattr(args, "until", None), args.profile,
                          args.provider, args.model, args.tz)
    except QueryError as exc:
        raise UsageError(f"hermit {command}: {exc}") from None


def _run(command: str, fn):
    from hermit.cli import UsageError
    from hermit.services.analytics import QueryError

    try:
        return fn()
    except QueryError as exc:
        raise UsageError(f"hermit {command}: {exc}") from None


def usage(args) -> int:
    from hermit.cli import analytics_output as render
    from hermit.cli.common import print_json, wants_json
    from hermit.services.analytics import AnalyticsService

    query = _query(args, "usage")
    _open(args)
    service = AnalyticsService()
    if wants_json(args):
        print_json(service.usage(query))
        return 0
    print(render.usage(service.summary(query), query))
    return 0


def report(args) -> int:
    from hermit.cli import UsageError
    from hermit.cli import analytics_output as render
    from hermit.cli.common import print_json, wants_json
    from hermit.services.analytics import MAX_LIMIT, AnalyticsService

    query = _query(args, "report")
    if not 1 <= args.requests_limit <= MAX_LIMIT:
        raise UsageError(f"hermit report: --requests-limit must be between 1 and {MAX_LIMIT:,}")
    _open(args)
    service = AnalyticsService()
    view = args.view
    if view == "summary":
        data = service.summary(query)
    elif view == "by-model":
        data = service.by_model(query)
    elif view == "timeseries":
        data = _run("report", lambda: service.timeseries(query, args.bucket))
    else:
        data = service.requests(query, args.requests_limit)
    if wants_json(args):
        print_json(data)
    else:
        print(render.report(view, data, query))
    return 0


# -- prices ---------------------------------------------------------------------------------


def _pricing(args):
    from hermit.services.pricing import PricingService

    _open(args)
    return PricingService()


def _price_errors(command: str, fn):
    from hermit.cli import Failed, UsageError
    from hermit.services.pricing import PriceError, PriceNotFound

    try:
        return fn()
    except PriceError as exc:
        raise UsageError(f"hermit prices {command}: {exc}") from None
    except PriceNotFound as exc:
        raise Failed(str(exc)) from None


def prices_list(args) -> int:
    from hermit.cli import analytics_output as render
    from hermit.cli.common import print_json, wants_json

    service = _pricing(args)
    prices = _price_errors("list", lambda: service.list(args.provider, args.model))
    data = [p.to_json() for p in prices]
    if wants_json(args):
        print_json({"data": data})
    else:
        print(render.prices(data))
    return 0


def prices_set(args) -> int:
    from hermit.cli import analytics_output as render
    from hermit.cli.common import print_json, wants_json

    service = _pricing(args)
    price = _price_errors("set", lambda: service.set(
        args.model, args.input, args.output, args.cached_input, args.cache_write,
        provider=args.provider, profile=args.profile, reasoning=args.reasoning,
    ))
    if wants_json(args):
        print_json(price.to_json())
    else:
        print(f"price set for {render.price_scope(price.to_json())}; rows written from now on use it")
        print(render.prices([price.to_json()]))
    return 0


def prices_unset(args) -> int:
    from hermit.cli import analytics_output as render
    from hermit.cli.common import print_json, wants_json

    service = _pricing(args)
    removed = _price_errors("unset", lambda: service.unset(args.model, args.provider, args.profile))
    if wants_json(args):
        print_json(removed.to_json())
    else:
        print(f"override removed for {render.price_scope(removed.to_json())}; rows written from now on use "
              "the bundled price, if there is one")
    return 0


# -- export and ledger ------------------------------------------------------------------------


def export(args) -> int:
    import sys

    from hermit.cli import Failed
    from hermit.cli.common import print_json, wants_json
    from hermit.cli.analytics_output import write_rows

    query = _query(args, "export")
    _open(args)
    from hermit.services.analytics import AnalyticsService

    rows = AnalyticsService().iter_rows(query)
    if args.output in (None, "-"):
        if wants_json(args):
            write_rows(rows, "json", sys.stdout)
        else:
            write_rows(rows, args.format, sys.stdout)
        sys.stdout.flush()
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            count = write_rows(rows, args.format, out)
    except OSError as exc:
        raise Failed(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if wants_json(args):
        print_json({"rows": count, "format": args.format, "output": args.output})
    else:
        print(f"exported {count:,} rows to {args.output} ({args.format})")
    return 0


def ledger_prune(args) -> int:
    from hermit.cli import UsageError
    from hermit.cli.common import print_json, wants_json
    from hermit.services.analytics import QueryError, iso, parse_time, parse_tz
    from hermit.store import analytics_queries as q

    try:
        zone, _ = parse_tz(args.tz)
        before = parse_time(args.before, zone, param="before")
    except QueryError as exc:
        raise UsageError(f"hermit ledger prune: {exc}") from None
    if args.batch_size < 1:
        raise UsageError("hermit ledger prune: --batch-size must be at least 1")
    _open(args)
    if args.dry_run:
        result = {"deleted": 0, "would_delete": q.count_before(before), "before": iso(before), "batches": 0}
    else:
        deleted, batches = q.prune(before, args.batch_size)
        result = {"deleted": deleted, "before": iso(before), "batches": batches}
    if wants_json(args):
        print_json(result)
    elif args.dry_run:
        print(f"would delete {result['would_delete']:,} rows written before {result['before']}")
    else:
        print(f"deleted {deleted:,} rows written before {result['before']} in {batches:,} batches")
    return 0


def ledger_verify(args) -> int:
    from hermit.cli import Failed
    from hermit.cli.common import print_json, wants_json
    from hermit.store import analytics_queries as q

    _open(args)
    groups, problems = q.rollup_mismatches()
    result = {"ok": not problems, "groups": groups, "mismatches": problems, "repaired": False}
    if problems and args.repair:
        q.rebuild_rollups()
        result["repaired"] = True
    if wants_json(args):
        print_json(result)
    elif not problems:
        print(f"rollups agree with the raw rows ({groups:,} slot groups checked)")
    else:
        print(f"{len(problems)} rollup groups differ from the raw rows" + ("; rebuilt them" if args.repair else ""))
    if problems and not args.repair:
        raise Failed("rollups differ from the raw rows; run `hermit ledger verify --repair`")
    return 0
