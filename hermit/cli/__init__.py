"""The `hermit` command line: argparse only at import time, everything else loaded per command."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from hermit import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class UsageError(Exception):
    """Bad usage: exit 2 with one line on stderr."""


class Failed(Exception):
    """The operation failed: exit 1 with one line on stderr."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _json_flag(parser: argparse.ArgumentParser, top: bool = False) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print exactly one JSON document on stdout",
    )


def _sub(subparsers, name: str, handler: str, help: str, **kw) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help, description=kw.pop("description", help), **kw)
    parser.set_defaults(handler=handler)
    _json_flag(parser)
    return parser


def _profile_fields(parser: argparse.ArgumentParser, creating: bool) -> None:
    parser.add_argument("--name", required=creating, help="unique profile name")
    parser.add_argument("--provider", required=creating, help="provider name or alias (see `hermit providers`)")
    parser.add_argument("--base-url", help="upstream base URL (default: HERMIT_<PROVIDER>_BASE_URL, then built-in)")
    parser.add_argument("--model", help="upstream model (default: HERMIT_<PROVIDER>_MODEL, then built-in)")
    parser.add_argument("--api-key", help="upstream API key (stored encrypted; default HERMIT_<PROVIDER>_API_KEY)")
    parser.add_argument("--default-max-tokens", type=int, help="output limit added when a request sets none")
    override = parser.add_mutually_exclusive_group()
    override.add_argument(
        "--allow-client-model-override", action="store_const", const=True, default=None,
        help="forward the client's `model` instead of the profile's",
    )
    if not creating:
        override.add_argument(
            "--no-allow-client-model-override", dest="allow_client_model_override",
            action="store_const", const=False, help="enforce the profile's model again",
        )
    parser.add_argument("--embedding-model", help="model for /v1/embeddings (default: the client's)")
    parser.add_argument("--auth-profile-id", type=int, help="auth profile (github-copilot)")
    parser.add_argument("--activate", action="store_true", help="make it the active profile")
    parser.add_argument("--skip-test", action="store_true", help="save without the quick upstream test")


def build_parser() -> Parser:
    parser = Parser(
        prog="hermit",
        description="Hermit: an OpenAI-compatible LLM proxy with a local token and cost ledger. "
        "Without a command it opens the TUI, which runs the proxy inside it.",
    )
    parser.add_argument("--version", action="version", version=f"hermit {__version__}")
    parser.add_argument("--headless", action="store_true", help="never start the TUI")
    parser.add_argument("--database-url", help="database URL (overrides HERMIT_DATABASE_URL)")
    _json_flag(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    for name in ("serve", "server"):
        p = _sub(sub, name, "serve", "run the proxy without the TUI" if name == "serve" else "alias of serve")
        p.add_argument("--host", help="address to listen on (default HERMIT_HOST or 127.0.0.1)")
        p.add_argument("--port", type=int, help="port to listen on (default HERMIT_PORT or 8800)")
        p.add_argument("--log-level", choices=LOG_LEVELS, help="log level for this run (default: `hermit config get log-level`)")
        p.add_argument("--reload", action="store_true", help=argparse.SUPPRESS)  # the old uvicorn flag: accepted, ignored

    for name in ("tui", "demo"):
        p = _sub(sub, name, name, "full-screen TUI with the proxy inside" if name == "tui" else
                 "the TUI against a built-in simulated upstream with generated traffic, in a throwaway database")
        p.add_argument("--host", help="address to listen on")
        p.add_argument("--port", type=int, help="port to listen on")
        if name == "tui":
            p.add_argument("--no-server", action="store_true", help="watch the database only; run no proxy")

    profiles = _sub(sub, "profiles", "help:profiles", "saved upstream profiles")
    psub = profiles.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    _sub(psub, "list", "profiles.list_profiles", "list saved profiles")
    _sub(psub, "current", "profiles.current", "show the active profile")
    p = _sub(psub, "history", "profiles.history", "activations over time")
    p.add_argument("--limit", type=int, default=50)
    p = _sub(psub, "add", "profiles.add", "save a profile (quick upstream test first unless --skip-test)")
    _profile_fields(p, creating=True)
    p = _sub(psub, "update", "profiles.update", "change only the fields given")
    p.add_argument("id_or_name")
    _profile_fields(p, creating=False)
    p = _sub(psub, "delete", "profiles.delete", "delete a profile (not the active one)")
    p.add_argument("id_or_name")
    p = _sub(psub, "activate", "profiles.activate", "hot switch: new requests use it at once, in every process")
    p.add_argument("id_or_name")
    p.add_argument("--skip-test", action="store_true")
    p = _sub(psub, "test", "profiles.test", "quick upstream test, nothing saved")
    p.add_argument("--saved", metavar="ID_OR_NAME", help="test a saved profile")
    p.add_argument("--name")
    p.add_argument("--provider")
    p.add_argument("--base-url")
    p.add_argument("--model")
    p.add_argument("--api-key")
    p.add_argument("--auth-profile-id", type=int)

    _sub(sub, "providers", "providers", "known providers, aliases and default base URLs")

    from hermit.plugins import present

    for module in present(COMMAND_MODULES):
        module.register(sub, _sub)
    return parser


# Each of these modules defines register(subparsers, add) to add its commands, with
# handler="module.path:function" (imported only when that command runs).
COMMAND_MODULES = ("hermit.cli.auth", "hermit.cli.config", "hermit.cli.analytics")


def _handler(name: str) -> Callable:
    if ":" in name:
        import importlib

        module_path, _, func_name = name.partition(":")
        return getattr(importlib.import_module(module_path), func_name)
    module_name, _, func = name.partition(".")
    if module_name == "serve":
        from hermit.cli import serve as module
        return module.run
    if module_name in ("tui", "demo"):
        from hermit.cli import tui as module
        return getattr(module, module_name)
    if module_name in ("profiles", "providers"):
        from hermit.cli import profiles as module
        return getattr(module, func or module_name)
    raise UsageError(f"hermit: unknown command handler {name}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler_name = getattr(args, "handler", None)
        if handler_name is None:
            if args.headless:
                raise UsageError("hermit: --headless needs a command, for example `hermit --headless serve`")
            handler_name = "tui"
            args.no_server = False
            args.host = args.port = None
        if handler_name.startswith("help:"):
            group = handler_name[5:]
            parser.parse_args([group, "--help"])
        if args.headless and handler_name in ("tui", "demo"):
            raise UsageError("hermit: --headless never starts the TUI; use `hermit --headless serve`")
        return int(_handler(handler_name)(args) or 0)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except Failed as exc:
        print(f"hermit: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("hermit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except SystemExit as exc:  # argparse --help / --version
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        from hermit.cli.common import describe_failure

        code, message = describe_failure(exc)
        print(f"hermit: {message}", file=sys.stderr)
        return code
