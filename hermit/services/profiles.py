"""Profiles: validation, CRUD, activation and the resolved upstream target of a profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlparse

from hermit.core import providers as prov
from hermit.core.models import Activation, AuthProfile, Profile, hint, iso_from_ms
from hermit.services.secrets import LockedSecret
from hermit.settings import Settings
from hermit.store import repos
from hermit.store.repos import Conflict, NotFound, SecretCodec

__all__ = [
    "ProfileService", "AuthProfileService", "Target", "ValidationError", "NotFound", "Conflict",
    "UnknownReference", "resolve_target", "clean_fields", "CONNECTION_FIELDS",
]

SOURCES = ("cli", "http", "tui")
EDITABLE = (
    "name", "provider", "base_url", "model", "api_key", "default_max_tokens",
    "allow_client_model_override", "embedding_model", "auth_profile_id",
)


# Fields whose change can break the upstream connection (a quick test runs when one changes).
CONNECTION_FIELDS = ("provider", "base_url", "model", "api_key", "auth_profile_id")
AUTH_KINDS = ("github-copilot",)
LOCKED_HINT = "(locked: secret key missing)"


class ValidationError(ValueError):
    """A field value Hermit refuses; the message names the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownReference(NotFound):
    """A field refers to something that does not exist (an auth profile id)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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
        api_key=(profile.api_key if isinstance(profile.api_key, LockedSecret)
                 else prov.effective_api_key(provider, profile.api_key, env)),
        default_max_tokens=profile.default_max_tokens,
        allow_client_model_override=profile.allow_client_model_override,
        embedding_model=profile.embedding_model,
        auth_profile_id=profile.auth_profile_id,
    )


def validate_base_url(url: str) -> str:
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationError(f"base_url must be an http:// or https:// URL with a host, got {url!r}", "base_url")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValidationError(f"base_url has an invalid port: {url!r}", "base_url") from None
    return url.rstrip("/")


def clean_fields(fields: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validate and normalise profile fields given by a user (CLI flags or JSON)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in EDITABLE:
            continue
        if value is None:  # None (like "") clears an optional field; required ones are left alone
            if key not in ("name", "provider", "allow_client_model_override"):
                out[key] = None
            continue
        if key == "name":
            value = str(value).strip()
            if not value:
                raise ValidationError("name must not be empty", "name")
            if value.isdigit():
                raise ValidationError("name must not be a number (numbers select profiles by id)", "name")
            if len(value) > 200:
                raise ValidationError("name must be at most 200 characters", "name")
        elif key == "provider":
            try:
                value = prov.canonical_name(str(value))
            except prov.UnknownProvider as exc:
                raise ValidationError(str(exc), "provider") from None
        elif key == "base_url":
            value = validate_base_url(str(value)) if str(value).strip() else None
        elif key in ("model", "embedding_model", "api_key"):
            value = str(value).strip() or None
        elif key in ("default_max_tokens", "auth_profile_id"):
            if isinstance(value, str) and not value.strip():
                out[key] = None  # "" clears the field
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(str(value))
                except ValueError:
                    raise ValidationError(f"{key} must be a whole number, got {value!r}", key) from None
            if value < 1:
                raise ValidationError(f"{key} must be at least 1, got {value}", key)
        elif key == "allow_client_model_override":
            if not isinstance(value, bool):
                raise ValidationError("allow_client_model_override must be true or false", key)
        out[key] = value
    if creating:
        for required in ("name", "provider"):
            if required not in out:
                raise ValidationError(f"{required} is required", required)
    return out


def draft_profile(fields: Mapping[str, Any], base: Profile | None = None) -> Profile:
    """An unsaved Profile from cleaned fields (over `base` when updating), for quick tests."""
    if base is not None:
        from dataclasses import replace

        return replace(base, **{k: v for k, v in fields.items() if k in EDITABLE})
    return Profile(
        id=0,
        name=fields.get("name") or "unsaved",
        provider=fields["provider"],
        base_url=fields.get("base_url"),
        model=fields.get("model"),
        api_key=fields.get("api_key"),
        default_max_tokens=fields.get("default_max_tokens"),
        allow_client_model_override=bool(fields.get("allow_client_model_override")),
        embedding_model=fields.get("embedding_model"),
        auth_profile_id=fields.get("auth_profile_id"),
        is_active=False,
        created_at=0,
        updated_at=0,
        last_activated_at=None,
    )


class ProfileService:
    """Profile operations over the store. Synchronous: call from a thread in async code."""

    def __init__(self, settings: Settings, codec: SecretCodec) -> None:
        self.settings = settings
        # A SecretBox is read through its revealing codec: a secret that cannot be decrypted
        # (database moved without its key) becomes a LockedSecret instead of breaking every read.
        self.codec = getattr(codec, "reader", codec)

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

    def draft(self, fields: Mapping[str, Any], base: Profile | None = None) -> Profile:
        return draft_profile(fields, base)

    def to_json(self, profile: Profile) -> dict[str, Any]:
        provider = prov.get_provider(profile.provider)
        locked = isinstance(profile.api_key, LockedSecret)
        key = profile.api_key if locked else prov.effective_api_key(provider, profile.api_key, self.env)
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
            "api_key_set": bool(key) or locked,
            "api_key_hint": LOCKED_HINT if locked else hint(key),
            "created_at": iso_from_ms(profile.created_at),
            "updated_at": iso_from_ms(profile.updated_at),
            "last_activated_at": iso_from_ms(profile.last_activated_at),
        }

    # -- writes ---------------------------------------------------------------------------

    def ensure_name_free(self, name: str | None, exclude_id: int | None = None) -> None:
        """Conflict when another profile has this name (checked before a quick test is spent)."""
        if name is None:
            return
        try:
            other = repos.find_profile(name)
        except NotFound:
            return
        if other.name == name and other.id != exclude_id:
            raise Conflict(f"a profile named {name!r} already exists")

    def check_references(self, fields: Mapping[str, Any]) -> None:
        auth_id = fields.get("auth_profile_id")
        if auth_id is not None and not repos.auth_profile_exists(auth_id):
            raise UnknownReference(
                f"auth_profile_id {auth_id} does not exist (see `hermit auth list`)", "auth_profile_id"
            )

    def vet_new(self, fields: Mapping[str, Any]) -> Target:
        """Check cleaned fields can be saved (name free, references exist) before a quick test is
        spent on them; returns the target that quick test uses. One rule for CLI, HTTP and TUI."""
        self.ensure_name_free(fields["name"])
        self.check_references(fields)
        return self.target(draft_profile(fields))

    def vet_changes(self, existing: Profile, changes: Mapping[str, Any], *, activate: bool = False) -> Target | None:
        """The same for an update; None when it needs no quick test (no connection field changes
        and no switch to an inactive profile)."""
        self.ensure_name_free(changes.get("name"), existing.id)
        self.check_references(changes)
        if any(k in changes for k in CONNECTION_FIELDS) or (activate and not existing.is_active):
            return self.target(draft_profile(changes, existing))
        return None

    def add(self, fields: Mapping[str, Any]) -> Profile:
        fields = clean_fields(fields, creating=True)
        self.check_references(fields)
        return repos.create_profile(fields, self.codec)

    def update(self, id_or_name: str | int, fields: Mapping[str, Any]) -> Profile:
        profile = self.get(id_or_name)
        changes = clean_fields(fields, creating=False)
        if not changes:
            return profile
        self.check_references(changes)
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
        with repos.write_transaction():
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


class AuthProfileService:
    """Auth profiles: named credentials (GitHub tokens for github-copilot), encrypted at rest."""

    def __init__(self, settings: Settings, codec: SecretCodec) -> None:
        self.settings = settings
        self.codec = getattr(codec, "reader", codec)

    def list(self) -> list[AuthProfile]:
        return repos.list_auth_profiles(self.codec)

    def get(self, id_or_name: str | int) -> AuthProfile:
        return repos.find_auth_profile(id_or_name, self.codec)

    def save(self, name: Any, kind: Any, token: Any) -> tuple[AuthProfile, bool]:
        """Create it, or replace the token of the auth profile with that name; (profile, created)."""
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("name is required", "name")
        name = name.strip()
        if name.isdigit():
            raise ValidationError("name must not be a number (numbers select auth profiles by id)", "name")
        if len(name) > 200:
            raise ValidationError("name must be at most 200 characters", "name")
        if kind not in AUTH_KINDS:
            raise ValidationError(f"kind must be one of: {', '.join(AUTH_KINDS)}", "kind")
        if not isinstance(token, str) or not token.strip():
            raise ValidationError("github_token is required", "github_token")
        return repos.save_auth_profile(name, kind, token.strip(), self.codec)

    def token(self, auth_id: int) -> str:
        """The decrypted token; SecretKeyError when it cannot be decrypted here."""
        from hermit.services.secrets import require

        stored = repos.auth_profile_token(auth_id)
        value = require(self.codec.decrypt(stored)) if stored else ""
        if not value:
            raise NotFound(f"auth profile {auth_id} holds no token; log in again with `hermit auth login-github-copilot`")
        return value

    def to_json(self, auth: AuthProfile) -> dict[str, Any]:
        locked = isinstance(auth.token, LockedSecret)
        return {
            "id": auth.id,
            "name": auth.name,
            "kind": auth.kind,
            "token_set": bool(auth.token) or locked,
            "token_hint": LOCKED_HINT if locked else hint(auth.token),
            "created_at": iso_from_ms(auth.created_at),
        }
