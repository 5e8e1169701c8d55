"""`hermit profiles ...` and `hermit providers`."""

from __future__ import annotations

from hermit.cli.common import print_json, services_from, table, wants_json
from hermit.core.models import iso_from_ms

FIELD_FLAGS = (
    "name", "provider", "base_url", "model", "api_key", "default_max_tokens",
    "allow_client_model_override", "embedding_model", "auth_profile_id",
)


def _fields(args) -> dict:
    return {key: getattr(args, key, None) for key in FIELD_FLAGS if getattr(args, key, None) is not None}


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


def list(args) -> int:  # noqa: A001 - the command's name
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
    from hermit.services.profiles import clean_fields, resolve_target

    services = services_from(args)
    fields = clean_fields(_fields(args), creating=True)
    if not args.skip_test:
        from hermit.core.models import Profile

        draft = Profile(0, fields["name"], fields["provider"], fields.get("base_url"), fields.get("model"),
                        fields.get("api_key"), fields.get("default_max_tokens"),
                        bool(fields.get("allow_client_model_override")), fields.get("embedding_model"),
                        fields.get("auth_profile_id"), False, 0, 0, None)
        _quick_test(services, resolve_target(draft, services.settings.env or {}))
    profile = services.profiles.add(fields)
    if args.activate:
        profile = services.profiles.activate(profile.id, "cli")
    _print_one(services, profile, wants_json(args), "saved")
    return 0


def update(args) -> int:
    from dataclasses import replace

    from hermit.services.profiles import clean_fields

    services = services_from(args)
    existing = services.profiles.get(args.id_or_name)
    changes = clean_fields(_fields(args), creating=False)
    if not args.skip_test and changes:
        draft = replace(existing, **changes)
        _quick_test(services, services.profiles.target(draft))
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
    from hermit.cli import Failed, UsageError
    from hermit.core.models import Profile
    from hermit.services.probe import run_probe
    from hermit.services.profiles import clean_fields, resolve_target

    services = services_from(args)
    if args.saved:
        target = services.profiles.target(services.profiles.get(args.saved))
    else:
        if not args.provider:
            raise UsageError("hermit profiles test: give --saved ID_OR_NAME, or --provider (with --base-url, --model, --api-key)")
        fields = clean_fields({**_fields(args), "name": args.name or "unsaved-test"}, creating=True)
        draft = Profile(0, fields["name"], fields["provider"], fields.get("base_url"), fields.get("model"),
                        fields.get("api_key"), None, False, None, fields.get("auth_profile_id"), False, 0, 0, None)
        target = resolve_target(draft, services.settings.env or {})
    result = run_probe(services, target)
    if wants_json(args):
        print_json(result.to_json())
    elif result.ok:
        print(f"ok: {target.provider.name} {result.model} answered {result.status_code} in {result.latency_ms:.0f} ms")
    if not result.ok:
        if wants_json(args):
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


__all__ = ["list", "current", "history", "add", "update", "delete", "activate", "test", "providers", "iso_from_ms"]
