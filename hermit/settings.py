"""Settings read from the environment (see CONTRACT.md, Environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

DEFAULT_DATABASE_URL = "sqlite:///./hermit.db"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class SettingsError(ValueError):
    """An environment variable holds a value Hermit cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything Hermit takes from its environment, resolved once."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8800
    default_provider: str = "ollama"
    default_model: str = "deepseek-r1:32b"
    default_base_url: str = "http://localhost:11434/v1"
    default_api_key: str = ""
    default_max_tokens: int = 2048
    request_timeout: float = 120.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    admin_token: str | None = None
    secret_key: str | None = None
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    github_oauth_client_id: str | None = None
    env: Mapping[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        return cls(
            database_url=env.get("HERMIT_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
            host=env.get("HERMIT_HOST", "").strip() or "127.0.0.1",
            port=_int(env, "HERMIT_PORT", 8800),
            default_provider=env.get("HERMIT_DEFAULT_PROVIDER", "").strip() or "ollama",
            default_model=env.get("HERMIT_DEFAULT_MODEL", "").strip() or "deepseek-r1:32b",
            default_base_url=env.get("HERMIT_DEFAULT_BASE_URL", "").strip() or "http://localhost:11434/v1",
            default_api_key=env.get("HERMIT_DEFAULT_API_KEY", "").strip(),
            default_max_tokens=_int(env, "HERMIT_DEFAULT_MAX_TOKENS", 2048, minimum=1),
            request_timeout=_float(env, "HERMIT_REQUEST_TIMEOUT_SECONDS", 120.0),
            max_body_bytes=_int(env, "HERMIT_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1024),
            admin_token=env.get("HERMIT_ADMIN_TOKEN", "").strip() or None,
            secret_key=env.get("HERMIT_SECRET_KEY", "").strip() or None,
            github_url=(env.get("HERMIT_GITHUB_URL", "").strip() or "https://github.com").rstrip("/"),
            github_api_url=(env.get("HERMIT_GITHUB_API_URL", "").strip() or "https://api.github.com").rstrip("/"),
            github_oauth_client_id=env.get("GITHUB_OAUTH_CLIENT_ID", "").strip() or None,
            env=env,
        )

    def getenv(self, name: str) -> str:
        """One raw environment value ('' when unset), as captured by from_env."""
        return (self.env or {}).get(name, "").strip()
