"""Synchronous queries over the tables; rows become core records here and nowhere else."""

from __future__ import annotations

import operator
from typing import Any, Iterable, Protocol

import peewee

from hermit.core.models import Activation, AuthProfile, LedgerEntry, Profile, now_ms
from hermit.store.tables import (
    ActivationRow,
    AppStateRow,
    AuthProfileRow,
    LedgerRow,
    ProfileRow,
    database,
)

PROFILES_REV = "profiles_rev"


class SecretCodec(Protocol):
    def encrypt(self, value: str) -> str: ...
    def decrypt(self, value: str) -> str: ...


class PlainCodec:
    """No encryption (only for tests that need it explicitly)."""

    def encrypt(self, value: str) -> str:
        return value

    def decrypt(self, value: str) -> str:
        return value


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


def write_transaction():
    """A transaction that reads then writes. On SQLite it starts IMMEDIATE (waiting on the busy
    timeout for other writers) so it cannot fail at once with "database is locked" when another
    connection committed between its first read and its first write (WAL snapshots)."""
    db = database.obj
    if isinstance(db, peewee.SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return database.atomic()


# -- app state ----------------------------------------------------------------------------


def state_get(key: str, default: str | None = None) -> str | None:
    row = AppStateRow.get_or_none(AppStateRow.key == key)
    return default if row is None else row.value


def state_set(key: str, value: str) -> None:
    AppStateRow.insert(key=key, value=value).on_conflict(
        conflict_target=[AppStateRow.key], update={AppStateRow.value: value}
    ).execute()


def _bump_profiles_rev() -> None:
    current = state_get(PROFILES_REV, "0") or "0"
    state_set(PROFILES_REV, str(int(current) + 1))


def profiles_rev() -> int:
    return int(state_get(PROFILES_REV, "0") or "0")


# -- profiles -----------------------------------------------------------------------------


def _profile(row: ProfileRow, codec: SecretCodec | None) -> Profile:
    key = row.api_key
    if key and codec is not None:
        key = codec.decrypt(key)
    elif key and codec is None:
        key = None  # caller did not ask for secrets
    return Profile(
        id=row.id,
        name=row.name,
        provider=row.provider,
        base_url=row.base_url,
        model=row.model,
        api_key=key,
        default_max_tokens=row.default_max_tokens,
        allow_client_model_override=bool(row.allow_client_model_override),
        embedding_model=row.embedding_model,
        auth_profile_id=row.auth_profile_id,
        is_active=bool(row.is_active),
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_activated_at=row.last_activated_at,
    )


def api_key_stored(profile_id: int) -> str | None:
    """The stored (encrypted) key, for hints computed after decryption by the caller."""
    row = ProfileRow.get_or_none(ProfileRow.id == profile_id)
    return None if row is None else row.api_key


def list_profiles(codec: SecretCodec | None = None) -> list[Profile]:
    return [_profile(r, codec) for r in ProfileRow.select().order_by(ProfileRow.id)]


def count_profiles() -> int:
    return ProfileRow.select().count()


def find_profile(id_or_name: str | int, codec: SecretCodec | None = None) -> Profile:
    """By exact name first, then by numeric id."""
    key = str(id_or_name).strip()
    row = ProfileRow.get_or_none(ProfileRow.name == key)
    if row is None and key.isdigit():
        row = ProfileRow.get_or_none(ProfileRow.id == int(key))
    if row is None:
        raise NotFound(f"no profile with id or name {key!r} (see `hermit profiles list`)")
    return _profile(row, codec)


def active_profile(codec: SecretCodec | None = None) -> Profile | None:
    row = ProfileRow.select().where(ProfileRow.is_active == True).order_by(ProfileRow.id).first()  # noqa: E712
    return None if row is None else _profile(row, codec)


def _name_taken(name: str, exclude_id: int | None = None) -> bool:
    query = ProfileRow.select().where(ProfileRow.name == name)
    if exclude_id is not None:
        query = query.where(ProfileRow.id != exclude_id)
    return query.exists()


def create_profile(fields: dict[str, Any], codec: SecretCodec) -> Profile:
    with write_transaction():
        if _name_taken(fields["name"]):
            raise Conflict(f"a profile named {fields['name']!r} already exists")
        ts = now_ms()
        values = dict(fields)
        if values.get("api_key"):
            values["api_key"] = codec.encrypt(values["api_key"])
        try:
            row = ProfileRow.create(created_at=ts, updated_at=ts, is_active=False, **values)
        except peewee.IntegrityError:
            raise Conflict(f"a profile named {fields['name']!r} already exists") from None
        _bump_profiles_rev()
    return _profile(row, codec)


def update_profile(profile_id: int, fields: dict[str, Any], codec: SecretCodec) -> Profile:
    with write_transaction():
        row = ProfileRow.get_or_none(ProfileRow.id == profile_id)
        if row is None:
            raise NotFound(f"no profile with id {profile_id}")
        if "name" in fields and _name_taken(fields["name"], exclude_id=profile_id):
            raise Conflict(f"a profile named {fields['name']!r} already exists")
        for key, value in fields.items():
            if key == "api_key" and value:
                value = codec.encrypt(value)
            setattr(row, key, value)
        row.updated_at = now_ms()
        row.save()
        _bump_profiles_rev()
    return _profile(row, codec)


def delete_profile(profile_id: int) -> None:
    with write_transaction():
        row = ProfileRow.get_or_none(ProfileRow.id == profile_id)
        if row is None:
            raise NotFound(f"no profile with id {profile_id}")
        if row.is_active:
            raise Conflict(f"profile {row.name!r} is active; activate another profile before deleting it")
        row.delete_instance()
        _bump_profiles_rev()


def activate_profile(profile_id: int, source: str, codec: SecretCodec | None = None) -> Profile:
    with write_transaction():
        row = ProfileRow.get_or_none(ProfileRow.id == profile_id)
        if row is None:
            raise NotFound(f"no profile with id {profile_id}")
        ts = now_ms()
        ProfileRow.update(is_active=False).where(
            (ProfileRow.is_active == True) & (ProfileRow.id != profile_id)  # noqa: E712
        ).execute()
        row.is_active = True
        row.last_activated_at = ts
        row.save()
        ActivationRow.create(profile_id=row.id, profile_name=row.name, activated_at=ts, source=source)
        _bump_profiles_rev()
    return _profile(row, codec)


def activation_history(limit: int | None = None) -> list[Activation]:
    query = ActivationRow.select().order_by(ActivationRow.activated_at.desc(), ActivationRow.id.desc())
    if limit:
        query = query.limit(limit)
    return [
        Activation(r.id, r.profile_id, r.profile_name, r.activated_at, r.source) for r in query
    ]


# -- auth profiles ------------------------------------------------------------------------


def _auth(row: AuthProfileRow, codec: SecretCodec | None) -> AuthProfile:
    token = row.token
    if token and codec is not None:
        token = codec.decrypt(token)
    return AuthProfile(row.id, row.name, row.kind, token, row.created_at, row.updated_at)


def list_auth_profiles(codec: SecretCodec | None) -> list[AuthProfile]:
    return [_auth(r, codec) for r in AuthProfileRow.select().order_by(AuthProfileRow.id)]


def get_auth_profile(auth_id: int, codec: SecretCodec | None) -> AuthProfile:
    row = AuthProfileRow.get_or_none(AuthProfileRow.id == auth_id)
    if row is None:
        raise NotFound(f"no auth profile with id {auth_id}")
    return _auth(row, codec)


def find_auth_profile(id_or_name: str | int, codec: SecretCodec | None) -> AuthProfile:
    """By exact name first, then by numeric id."""
    key = str(id_or_name).strip()
    row = AuthProfileRow.get_or_none(AuthProfileRow.name == key)
    if row is None and key.isdigit():
        row = AuthProfileRow.get_or_none(AuthProfileRow.id == int(key))
    if row is None:
        raise NotFound(f"no auth profile with id or name {key!r} (see `hermit auth list`)")
    return _auth(row, codec)


def auth_profile_exists(auth_id: int) -> bool:
    return AuthProfileRow.select().where(AuthProfileRow.id == auth_id).exists()


def auth_profile_token(auth_id: int) -> str | None:
    """The stored (encrypted) token of one auth profile; NotFound when it does not exist."""
    row = AuthProfileRow.get_or_none(AuthProfileRow.id == auth_id)
    if row is None:
        raise NotFound(f"no auth profile with id {auth_id} (see `hermit auth list`)")
    return row.token


def save_auth_profile(name: str, kind: str, token: str, codec: SecretCodec) -> tuple[AuthProfile, bool]:
    """Create the auth profile, or replace the token of the one with that name; (profile, created)."""
    with write_transaction():
        created = not AuthProfileRow.select().where(AuthProfileRow.name == name).exists()
        profile = upsert_auth_profile(name, kind, token, codec)
    return profile, created


def encrypt_plaintext_secrets(codec: SecretCodec, prefix: str) -> int:
    """Encrypt, once, any API key or token stored in plain text by an older Hermit; returns how many.

    The old plain text is overwritten on disk too (secure_delete, then a WAL checkpoint on SQLite).
    """
    profiles = [
        r for r in ProfileRow.select(ProfileRow.id, ProfileRow.api_key).where(ProfileRow.api_key.is_null(False))
        if r.api_key and not r.api_key.startswith(prefix)
    ]
    auths = [
        r for r in AuthProfileRow.select(AuthProfileRow.id, AuthProfileRow.token).where(AuthProfileRow.token.is_null(False))
        if r.token and not r.token.startswith(prefix)
    ]
    if not profiles and not auths:
        return 0
    db = database.obj
    sqlite = isinstance(db, peewee.SqliteDatabase)
    if sqlite:
        db.execute_sql("PRAGMA secure_delete = ON")
    try:
        with write_transaction():
            for r in profiles:
                ProfileRow.update(api_key=codec.encrypt(r.api_key)).where(ProfileRow.id == r.id).execute()
            for r in auths:
                AuthProfileRow.update(token=codec.encrypt(r.token)).where(AuthProfileRow.id == r.id).execute()
        if sqlite:
            db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        if sqlite:
            db.execute_sql("PRAGMA secure_delete = OFF")
    return len(profiles) + len(auths)


def upsert_auth_profile(name: str, kind: str, token: str, codec: SecretCodec) -> AuthProfile:
    ts = now_ms()
    with write_transaction():
        row = AuthProfileRow.get_or_none(AuthProfileRow.name == name)
        if row is None:
            row = AuthProfileRow.create(name=name, kind=kind, token=codec.encrypt(token), created_at=ts, updated_at=ts)
        else:
            row.kind = kind
            row.token = codec.encrypt(token)
            row.updated_at = ts
            row.save()
    return _auth(row, codec)


# -- ledger -------------------------------------------------------------------------------

_LEDGER_COLUMNS = (
    "request_id", "created_at", "profile_id", "profile_name", "provider", "upstream_model",
    "client_model", "endpoint", "stream", "status_code", "prompt_tokens", "completion_tokens",
    "total_tokens", "cached_tokens", "reasoning_tokens", "cache_write_tokens", "upstream_cost_usd",
    "latency_ms", "ttft_ms", "overhead_ms", "usage_source", "client", "project", "user", "error",
)
_LEDGER_FIELDS = [getattr(LedgerRow, c) for c in _LEDGER_COLUMNS] + [LedgerRow.cost_nanousd]


def _nanousd(cost: float | None) -> int | None:
    return None if cost is None else int(round(cost * 1e9))


_ROW_OF = operator.attrgetter(*_LEDGER_COLUMNS)
_INSERT_SQL: dict[tuple[type, int], str] = {}
_INSERT_CHUNK = 500  # rows per statement: 26 parameters each stays under SQLite's 32,766


def _insert_sql(db: peewee.Database, rows: int) -> str:
    key = (type(db), rows)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        columns = ", ".join(f'"{c}"' for c in (*_LEDGER_COLUMNS, "cost_nanousd"))
        one = "(" + ", ".join([db.param] * (len(_LEDGER_COLUMNS) + 1)) + ")"
        sql = f'INSERT INTO "ledger" ({columns}) VALUES ' + ", ".join([one] * rows)
        if len(_INSERT_SQL) > 64:
            _INSERT_SQL.clear()
        _INSERT_SQL[key] = sql
    return sql


def insert_ledger(entries: Iterable[LedgerEntry]) -> int:
    """Insert entries in one transaction, a few hundred rows per statement; returns how many.

    One multi-row statement per chunk means one trip into SQLite (which runs without the GIL)
    instead of one per row, so the writer thread hands the GIL back and forth with the event
    loop a couple of times per batch, not twice per row.
    """
    entries = list(entries)
    if not entries:
        return 0
    db = database.obj
    with database.atomic():
        cursor = db.cursor()
        for start in range(0, len(entries), _INSERT_CHUNK):
            chunk = entries[start : start + _INSERT_CHUNK]
            params: list[Any] = []
            for e in chunk:
                params.extend(_ROW_OF(e))
                params.append(_nanousd(e.cost_usd))
            cursor.execute(_insert_sql(db, len(chunk)), params)
    return len(entries)


def ledger_entry(row: dict[str, Any]) -> LedgerEntry:
    nano = row.pop("cost_nanousd", None)
    row["cost_usd"] = None if nano is None else nano / 1e9
    row["stream"] = bool(row["stream"])
    return LedgerEntry(**row)


def recent_ledger(limit: int = 20) -> list[LedgerEntry]:
    query = LedgerRow.select().order_by(LedgerRow.id.desc()).limit(limit).dicts()
    return [ledger_entry(r) for r in query]


def ledger_count() -> int:
    return LedgerRow.select().count()
