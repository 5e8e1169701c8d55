"""`hermit profiles ...` and `hermit providers`."""

from __future__ import annotations

from hermit.cli.common import print_json, services_from, table, wants_json
from hermit.core.models import iso_from_ms

FIELD_FLAGS = (
    "name", "provider", "base_url", "model", "api_key", "default_max_tokens",
    "allow_client_model_override", "embedding_model", "auth_profile_id",
)


def read_secret(value: str | None, flag: str) -> str | None:
    """`--api-key -` (or `--github-token -`) reads the secret from standard input, out of ps and shell history."""
    if value != "-":
        return value
    import sys

    from hermit.cli import UsageError

    line = sys.stdin.readline().strip()
    if not line:
        raise UsageError(f"hermit: {flag} - expects the secret on standard input, and none came")
    return line


def _fields(args) -> dict:
    fields = {key: getattr(args, key, None) for key in FIELD_FLAGS if getattr(args, key, None) is not None}
    if "api_key" in fields:
        fields["api_key"] = read_secret(fields["api_key"], "--api-key")
    return fields


def _print_profiles(services, profiles, as_json: bool) -> None:
    data = [services.profiles.to_json(p) for p in profiles]
    if as_json:
        print_json({"data": data})
        return
    if not data:
        print("no saved profiles; add one with `hermit profiles add --name N --provider P`")
        return
    rows = [
        [
            "*" if p["is_active"] else "",
            p["id"],
            p["name"],
            p["provider"],
            p["model"],
            p["base_url"],
            p["api_key_hint"] or "-",
            "yes" if p["allow_client_model_override"] else "no",
            (p["last_activated_at"] or "-")[:19].replace("T", " "),
        ]
        for p in data
    ]
    print(table(["", "ID", "NAME", "PROVIDER", "MODEL", "BASE URL", "KEY", "OVERRIDE", "LAST ACTIVATED"], rows, right=[1]))


def _print_one(services, profile, as_json: bool, verb: str | None = None) -> None:
    data = services.profiles.to_json(profile)
    if as_json:
        print_json(data)
        return
    if verb:
        print(f"{verb} profile {data['name']} (id {data['id']})")
    width = max(len(k) for k in data)
    for key, value in data.items():
        print(f"{key.ljust(width)}  {'-' if value is None else value}")


def list_profiles(args) -> int:
    services = services_from(args)
    _print_profiles(services, services.profiles.list(), wants_json(args))
    return 0


def current(args) -> int:
    from hermit.cli import Failed

    services = services_from(args)
    profile = services.profiles.current()
    if profile is None:
        raise Failed("no active profile; activate one with `hermit profiles activate ID_OR_NAME`")
    _print_one(services, profile, wants_json(args))
    return 0


def history(args) -> int:
    services = services_from(args)
    items = [a.to_json() for a in services.profiles.history(args.limit)]
    if wants_json(args):
        print_json({"data": items})
        return 0
    if not items:
        print("no activations yet")
        return 0
    rows = [[i["activated_at"], i["profile_id"], i["profile_name"], i["source"]] for i in items]
    print(table(["ACTIVATED AT", "PROFILE ID", "PROFILE", "SOURCE"], rows, right=[1]))
    return 0


def _quick_test(services, target) -> None:
    from hermit.cli import Failed
    from hermit.services.probe import run_probe

    result = run_probe(services, target)
    if not result.ok:
        raise Failed(f"quick test failed, nothing changed: {result.message}")


def add(args) -> int:
    from hermit.services.profiles import clean_fields

    fields = clean_fields(_fields(args), creating=True)
    services = services_from(args)
    target = services.profiles.vet_new(fields)
    if not args.skip_test:
        _quick_test(services, target)
    profile = services.profiles.add(fields)
    if args.activate:
        profile = services.profiles.activate(profile.id, "cli")
    _print_one(services, profile, wants_json(args), "saved")
    return 0


def update(args) -> int:
    from hermit.services.profiles import clean_fields

    changes = clean_fields(_fields(args), creating=False)
    services = services_from(args)
    existing = services.profiles.get(args.id_or_name)
    target = services.profiles.vet_changes(existing, changes, activate=args.activate)
    if not args.skip_test and target is not None:
        _quick_test(services, target)
    profile = services.profiles.update(existing.id, changes)
    if args.activate:
        profile = services.profiles.activate(profile.id, "cli")
    _print_one(services, profile, wants_json(args), "updated")
    return 0


def delete(args) -> int:
    services = services_from(args)
    profile = services.profiles.delete(args.id_or_name)
    if wants_json(args):
        print_json(services.profiles.to_json(profile))
    else:
        print(f"deleted profile {profile.name} (id {profile.id})")
    return 0


def activate(args) -> int:
    services = services_from(args)
    profile = services.profiles.get(args.id_or_name)
    if not args.skip_test:
        _quick_test(services, services.profiles.target(profile))
    profile = services.profiles.activate(profile.id, "cli")
    if wants_json(args):
        print_json(services.profiles.to_json(profile))
    else:
        target = services.profiles.target(profile)
        print(f"active profile is now {profile.name} ({target.provider.name}, {target.model}); new requests use it at once")
    return 0


def test(args) -> int:
    import sys

    from hermit.cli import Failed, UsageError
    from hermit.services.probe import run_probe
    from hermit.services.profiles import clean_fields, draft_profile

    given = _fields(args)
    definition = {k: v for k, v in given.items() if k != "name"}
    if args.saved and definition:
        raise UsageError("hermit profiles test: give either --saved ID_OR_NAME or a definition (--provider ...), not both")
    if not args.saved and not args.provider:
        raise UsageError("hermit profiles test: give --saved ID_OR_NAME, or --provider (with --base-url, --model, --api-key)")
    fields = None if args.saved else clean_fields({**given, "name": args.name or "unsaved-test"}, creating=True)
    services = services_from(args)
    if args.saved:
        target = services.profiles.target(services.profiles.get(args.saved))
    else:
        services.profiles.check_references(fields)
        target = services.profiles.target(draft_profile(fields))
    result = run_probe(services, target)
    if wants_json(args):
        print_json(result.to_json())
    elif result.ok:
        print(f"ok: {target.provider.name} {result.model} answered {result.status_code} in {result.latency_ms:.0f} ms")
    if not result.ok:
        if wants_json(args):
            print(f"hermit: quick test failed: {result.message}", file=sys.stderr)
            return 1
        raise Failed(f"quick test failed: {result.message}")
    return 0


def providers(args) -> int:
    from hermit.core.providers import PROVIDERS

    data = [
        {"name": p.name, "aliases": list(p.aliases), "base_url": p.base_url, "default_model": p.default_model,
         "local": p.local}
        for p in PROVIDERS
    ]
    if wants_json(args):
        print_json({"data": data})
        return 0
    rows = [[d["name"], ", ".join(d["aliases"]), d["base_url"], d["default_model"]] for d in data]
    print(table(["PROVIDER", "ALIASES", "DEFAULT BASE URL", "DEFAULT MODEL"], rows))
    return 0


__all__ = ["list_profiles", "current", "history", "add", "update", "delete", "activate", "test", "providers", "iso_from_ms"]
