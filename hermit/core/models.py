"""Domain records shared by the proxy, the CLI and the TUI (no storage types leak out)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


def now_ms() -> int:
    """Wall-clock time as integer epoch milliseconds (how the database stores times)."""
    import time

    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC string with offset."""
    if ms is None:
        return None
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def hint(secret: str | None) -> str | None:
    """A recognisable but harmless hint of a secret, like 'sk-…9f3a'."""
    if not secret:
        return None
    tail = secret[-4:] if len(secret) >= 12 else ""
    head = ""
    for prefix in ("sk-or-", "sk-ant-", "sk-proj-", "sk-", "gho_", "ghp_", "github_pat_", "hf_", "nvapi-", "xai-"):
        if secret.startswith(prefix):
            head = prefix
            break
    return f"{head}…{tail}" if tail else f"{head}…"


@dataclass(frozen=True, slots=True)
class Profile:
    """A saved upstream configuration: provider, URL, model, key, limits."""

    id: int
    name: str
    provider: str
    base_url: str | None  # as stored (None: provider/env default)
    model: str | None
    api_key: str | None  # decrypted; never printed
    default_max_tokens: int | None
    allow_client_model_override: bool
    embedding_model: str | None
    auth_profile_id: int | None
    is_active: bool
    created_at: int
    updated_at: int
    last_activated_at: int | None


@dataclass(frozen=True, slots=True)
class AuthProfile:
    id: int
    name: str
    kind: str
    token: str | None
    created_at: int
    updated_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "token_set": bool(self.token),
            "token_hint": hint(self.token),
            "created_at": iso_from_ms(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Activation:
    id: int
    profile_id: int
    profile_name: str
    activated_at: int
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "profile_id": self.profile_id,
            "profile_name": self.profile_name,
            "activated_at": iso_from_ms(self.activated_at),
            "source": self.source,
        }


@dataclass(slots=True)
class LedgerEntry:
    """One proxied request, as written to the ledger."""

    request_id: str
    created_at: int
    provider: str
    upstream_model: str
    endpoint: str  # chat | embeddings
    stream: bool
    status_code: int
    profile_id: int | None = None
    profile_name: str | None = None
    client_model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None
    upstream_cost_usd: float | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    overhead_ms: float | None = None
    usage_source: str = "none"
    client: str | None = None
    project: str | None = None
    user: str | None = None
    error: str | None = None
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in LEDGER_JSON_FIELDS}
        data["created_at"] = iso_from_ms(self.created_at)
        return data


# The contract's ledger row, in its order, then Hermit's extras.
LEDGER_JSON_FIELDS = (
    "id", "created_at", "profile_id", "profile_name", "provider", "upstream_model", "client_model",
    "endpoint", "stream", "status_code", "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "reasoning_tokens", "cost_usd", "latency_ms", "ttft_ms", "overhead_ms",
    "usage_source", "client", "project", "user", "error", "request_id", "cache_write_tokens",
    "upstream_cost_usd",
)
