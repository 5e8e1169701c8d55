"""Helpers shared by the commands: settings, services, errors and output."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Iterable, Sequence

from hermit.cli import EXIT_FAILED, EXIT_USAGE, Failed, UsageError
from hermit.settings import Settings, SettingsError


def settings_from(args) -> Settings:
    env = dict(os.environ)
    if getattr(args, "database_url", None):
        env["HERMIT_DATABASE_URL"] = args.database_url
    try:
        return Settings.from_env(env)
    except SettingsError as exc:
        raise UsageError(f"hermit: {exc}") from None


def services_from(args, *, bootstrap: bool = True):
    from hermit.wiring import build_services

    return build_services(settings_from(args), bootstrap=bootstrap)


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """Exit code and one line for any exception that reaches the top."""
    from hermit.services.profiles import Conflict, NotFound, ValidationError
    from hermit.services.secrets import SecretKeyError
    from hermit.store.db import StoreError

    if isinstance(exc, ValidationError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, (NotFound, Conflict, StoreError, SecretKeyError)):
        return EXIT_FAILED, str(exc).strip("'\"") if isinstance(exc, NotFound) else str(exc)
    try:
        import peewee

        if isinstance(exc, peewee.OperationalError):
            text = str(exc)
            if "locked" in text:
                return EXIT_FAILED, "the database is locked by another process (timed out waiting)"
            return EXIT_FAILED, f"database error: {text}"
        if isinstance(exc, peewee.DatabaseError):
            return EXIT_FAILED, f"database error: {exc}"
    except ImportError:  # pragma: no cover
        pass
    return EXIT_FAILED, f"{type(exc).__name__}: {exc}"


def wants_json(args) -> bool:
    return bool(getattr(args, "json", False))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def fail(message: str) -> Failed:
    return Failed(message)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A plain aligned text table; columns listed in `right` are right-aligned."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    def fmt(row: Sequence[str]) -> str:
        parts = []
        for i, value in enumerate(row):
            parts.append(value.rjust(widths[i]) if i in right else value.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    lines = [fmt(list(headers)), fmt(["-" * w for w in widths])]
    lines.extend(fmt(row) for row in cells)
    return "\n".join(lines)
