"""Profiles: validation, CRUD, activation and the resolved upstream target of a profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlparse

from hermit.core import providers as prov
from hermit.core.models import Activation, Profile, hint, iso_from_ms
from hermit.settings import Settings
from hermit.store import repos
from hermit.store.repos import Conflict, NotFound, SecretCodec

__all__ = ["ProfileService", "Target", "ValidationError", "NotFound", "Conflict", "resolve_target"]

SOURCES = ("cli", "http", "tui")
EDITABLE = (
    "name", "provider", "base_url", "model", "api_key", "default_max_tokens",
    "allow_client_model_override", "embedding_model", "auth_profile_id",
)


class ValidationError(ValueError):
    """A field value Hermit refuses; the message names the field."""


@dataclass(frozen=True, slots=True)
class Target:
    """Everything the proxy needs to send a request for one profile, defaults applied."""

    profile_id: int | None
    profile_name: str | None
    provider: prov.Provider
    base_url: str
    model: str
    api_key: str
    default_max_tokens: int | None
    allow_client_model_override: bool
    embedding_model: str | None
    auth_profile_id: int | None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def resolve_target(profile: Profile, env: Mapping[str, str]) -> Target:
    provider = prov.get_provider(profile.provider)
    return Target(
        profile_id=profile.id,
        profile_name=profile.name,
        provider=provider,
        base_url=prov.effective_base_url(provider, profile.base_url, env),
        model=prov.effective_model(provider, profile.model, env),
        api_key=prov.effective_api_key(provider, profile.api_key, env),
        default_max_tokens=profile.default_max_tokens,
        allow_client_model_override=profile.allow_client_model_override,
        embedding_model=profile.embedding_model,
        auth_profile_id=profile.auth_profile_id,
    )


def validate_base_url(url: str) -> str:
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationError(f"base_url must be an http:// or https:// URL with a host, got {url!r}")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValidationError(f"base_url has an invalid port: {url!r}") from None
    return url.rstrip("/")


def clean_fields(fields: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validate and normalise profile fields given by a user (CLI flags or JSON)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in EDITABLE or value is None:
            continue
        if key == "name":
            value = str(value).strip()
            if not value:
                raise ValidationError("name must not be empty")
            if value.isdigit():
                raise ValidationError("name must not be a number (numbers select profiles by id)")
        elif key == "provider":
            try:
                value = prov.canonical_name(str(value))
            except prov.UnknownProvider as exc:
                raise ValidationError(str(exc)) from None
        elif key == "base_url":
            value = validate_base_url(str(value)) if str(value).strip() else None
        elif key in ("model", "embedding_model", "api_key"):
            value = str(value).strip() or None
        elif key in ("default_max_tokens", "auth_profile_id"):
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(str(value))
                except ValueError:
                    raise ValidationError(f"{key} must be a whole number, got {value!r}") from None
            if value < 1:
                raise ValidationError(f"{key} must be at least 1, got {value}")
        elif key == "allow_client_model_override":
            if not isinstance(value, bool):
                raise ValidationError("allow_client_model_override must be true or false")
        out[key] = value
    if creating:
        for required in ("name", "provider"):
            if required not in out:
                raise ValidationError(f"{required} is required")
    return out


class ProfileService:
    """Profile operations over the store. Synchronous: call from a thread in async code."""

    def __init__(self, settings: Settings, codec: SecretCodec) -> None:
        self.settings = settings
        self.codec = codec

    @property
    def env(self) -> Mapping[str, str]:
        return self.settings.env or {}

    # -- reads ----------------------------------------------------------------------------

    def list(self) -> list[Profile]:
        return repos.list_profiles(self.codec)

    def get(self, id_or_name: str | int) -> Profile:
        return repos.find_profile(id_or_name, self.codec)

    def current(self) -> Profile | None:
        return repos.active_profile(self.codec)

    def history(self, limit: int | None = None) -> list[Activation]:
        return repos.activation_history(limit)

    def target(self, profile: Profile) -> Target:
        return resolve_target(profile, self.env)

    def active_target(self) -> Target | None:
        profile = self.current()
        return None if profile is None else self.target(profile)

    def to_json(self, profile: Profile) -> dict[str, Any]:
        provider = prov.get_provider(profile.provider)
        key = prov.effective_api_key(provider, profile.api_key, self.env)
        return {
            "id": profile.id,
            "name": profile.name,
            "provider": profile.provider,
            "base_url": prov.effective_base_url(provider, profile.base_url, self.env),
            "model": prov.effective_model(provider, profile.model, self.env),
            "default_max_tokens": profile.default_max_tokens,
            "allow_client_model_override": profile.allow_client_model_override,
            "auth_profile_id": profile.auth_profile_id,
            "embedding_model": profile.embedding_model,
            "is_active": profile.is_active,
            "api_key_set": bool(key),
            "api_key_hint": hint(key),
            "created_at": iso_from_ms(profile.created_at),
            "updated_at": iso_from_ms(profile.updated_at),
            "last_activated_at": iso_from_ms(profile.last_activated_at),
        }

    # -- writes ---------------------------------------------------------------------------

    def add(self, fields: Mapping[str, Any]) -> Profile:
        return repos.create_profile(clean_fields(fields, creating=True), self.codec)

    def update(self, id_or_name: str | int, fields: Mapping[str, Any]) -> Profile:
        profile = self.get(id_or_name)
        changes = clean_fields(fields, creating=False)
        if not changes:
            return profile
        return repos.update_profile(profile.id, changes, self.codec)

    def delete(self, id_or_name: str | int) -> Profile:
        profile = self.get(id_or_name)
        repos.delete_profile(profile.id)
        return profile

    def activate(self, id_or_name: str | int, source: str) -> Profile:
        if source not in SOURCES:
            raise ValidationError(f"source must be one of {', '.join(SOURCES)}")
        profile = self.get(id_or_name)
        return repos.activate_profile(profile.id, source, self.codec)

    def bootstrap(self) -> Profile | None:
        """Create the first profile from HERMIT_DEFAULT_* on the very first run, and only then."""
        if repos.state_get("bootstrapped") is not None:
            return None
        from hermit.store.tables import database

        with database.atomic():
            if repos.state_get("bootstrapped") is not None:
                return None
            repos.state_set("bootstrapped", "1")
            if repos.count_profiles():
                return None
            s = self.settings
            fields = {
                "name": "default",
                "provider": s.default_provider,
                "base_url": s.default_base_url,
                "model": s.default_model,
                "api_key": s.default_api_key or None,
                "default_max_tokens": s.default_max_tokens,
            }
            try:
                profile = self.add(fields)
            except ValidationError:
                fields["provider"] = "openai-compatible"
                profile = self.add(fields)
            return repos.activate_profile(profile.id, "cli", self.codec)
