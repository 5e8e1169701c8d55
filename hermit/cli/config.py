"""`hermit config get|set log-level`: settings kept in the database."""

from __future__ import annotations

from hermit.cli.common import print_json, services_from, wants_json

KEYS = ("log-level",)


def register(sub, add) -> None:
    from hermit.cli import LOG_LEVELS  # not hermit.services: --help stays light

    config = add(sub, "config", "help:config", "settings kept in the database (log level)")
    csub = config.add_subparsers(dest="action", metavar="ACTION")
    p = add(csub, "get", "hermit.cli.config:get", "show a setting",
            description="Show a setting kept in the database. log-level: the level `hermit serve` uses "
            "unless --log-level is given.")
    p.add_argument("key", metavar="KEY", choices=KEYS, help="log-level")
    p = add(csub, "set", "hermit.cli.config:set_", "change a setting",
            description="Change a setting kept in the database. A running server picks up a new "
            f"log level within a few seconds. Levels: {', '.join(LOG_LEVELS)}.")
    p.add_argument("key", metavar="KEY", choices=KEYS, help="log-level")
    p.add_argument("value", metavar="LEVEL", help=", ".join(LOG_LEVELS))


def get(args) -> int:
    services = services_from(args, bootstrap=False)
    level = services.config.log_level()
    if wants_json(args):
        print_json({"log_level": level})
    else:
        print(level)
    return 0


def set_(args) -> int:
    from hermit.cli import UsageError
    from hermit.services.config import LOG_LEVELS

    value = (args.value or "").strip().lower()
    if value not in LOG_LEVELS:
        raise UsageError(f"hermit config set log-level: invalid level {args.value!r}; valid levels: {', '.join(LOG_LEVELS)}")
    services = services_from(args, bootstrap=False)
    level = services.config.set_log_level(value)
    if wants_json(args):
        print_json({"log_level": level})
    else:
        print(f"log level is now {level} (a running server picks it up within a few seconds)")
    return 0
