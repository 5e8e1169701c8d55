"""`hermit auth ...`: auth profiles (GitHub tokens for github-copilot)."""

from __future__ import annotations

import sys

from hermit.cli.common import print_json, services_from, table, wants_json


def register(sub, add) -> None:
    auth = add(sub, "auth", "help:auth", "auth profiles: stored GitHub tokens for github-copilot (tokens masked)")
    asub = auth.add_subparsers(dest="action", metavar="ACTION")
    add(asub, "list", "hermit.cli.auth:list_auth", "list auth profiles (tokens masked)")
    p = add(
        asub, "login-github-copilot", "hermit.cli.auth:login_github_copilot",
        "store a GitHub token for github-copilot, given or obtained with GitHub's device flow",
        description="Store a GitHub token for github-copilot profiles under NAME (logging in again with the "
        "same NAME replaces its token). With --device, Hermit prints a code and a URL, waits while you "
        "authorise it on GitHub, then stores the token. The token is encrypted at rest; use the auth "
        "profile with `hermit profiles add --provider github-copilot --auth-profile-id ID`.",
    )
    p.add_argument("--name", required=True, help="name of the auth profile")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--github-token", metavar="TOKEN",
                     help="a GitHub OAuth token (gho_...) you already have; `-` reads it from standard input")
    how.add_argument("--device", action="store_true", help="log in with GitHub's device flow")
    p.add_argument("--client-id", help="OAuth app client id for --device (default GITHUB_OAUTH_CLIENT_ID)")


def _print_auth(services, auth, as_json: bool, verb: str) -> None:
    data = services.auth_profiles.to_json(auth)
    if as_json:
        print_json(data)
        return
    print(f"{verb} auth profile {data['name']} (id {data['id']}, token {data['token_hint'] or '-'})")
    print(f"use it with: hermit profiles add --name NAME --provider github-copilot --auth-profile-id {data['id']}")


def list_auth(args) -> int:
    services = services_from(args)
    data = [services.auth_profiles.to_json(a) for a in services.auth_profiles.list()]
    if wants_json(args):
        print_json({"data": data})
        return 0
    if not data:
        print("no auth profiles; add one with `hermit auth login-github-copilot --name N --device`")
        return 0
    rows = [[d["id"], d["name"], d["kind"], d["token_hint"] or "-", (d["created_at"] or "")[:19].replace("T", " ")]
            for d in data]
    print(table(["ID", "NAME", "KIND", "TOKEN", "CREATED"], rows, right=[0]))
    return 0


def login_github_copilot(args) -> int:
    from hermit.cli import UsageError

    name = (args.name or "").strip()
    if not name or name.isdigit():
        raise UsageError("hermit auth login-github-copilot: --name must be a name, not empty or a number")
    if args.device:
        services = services_from(args)
        client_id = (args.client_id or services.settings.github_oauth_client_id or "").strip()
        if not client_id:
            raise UsageError(
                "hermit auth login-github-copilot --device needs an OAuth app client id: "
                "give --client-id or set GITHUB_OAUTH_CLIENT_ID"
            )
        token = _device_flow(services, client_id, as_json=wants_json(args))
    else:
        from hermit.cli.profiles import read_secret

        token = (read_secret(args.github_token, "--github-token") or "").strip()
        if not token:
            raise UsageError("hermit auth login-github-copilot: --github-token must not be empty")
        services = services_from(args)
    auth, created = services.auth_profiles.save(name, "github-copilot", token)
    _print_auth(services, auth, wants_json(args), "saved" if created else "updated")
    return 0


def _device_flow(services, client_id: str, as_json: bool) -> str:
    """Start GitHub's device flow, show the code, wait for authorisation; returns the GitHub token."""
    import asyncio

    import httpx

    from hermit.cli import Failed
    from hermit.services.github import GitHubError, poll_device_flow, start_device_flow

    out = sys.stderr if as_json else sys.stdout
    github_url = services.settings.github_url

    async def main() -> str:
        async with httpx.AsyncClient(trust_env=False, timeout=15.0) as client:
            code = await start_device_flow(client, github_url, client_id)
            print(f"Open {code.verification_uri} and enter the code {code.user_code}", file=out, flush=True)
            minutes = code.expires_in / 60
            print(f"waiting for GitHub (the code expires in {minutes:.0f} min; Ctrl-C to stop)...", file=out, flush=True)
            return await poll_device_flow(
                client, github_url, client_id, code.device_code, interval=code.interval, expires_in=code.expires_in
            )

    try:
        return asyncio.run(main())
    except GitHubError as exc:
        raise Failed(str(exc)) from None
