"""Operator price overrides: rows of price_overrides, and the revision counter proxies watch."""

from __future__ import annotations

from dataclasses import dataclass

from hermit.core.models import now_ms
from hermit.store import repos
from hermit.store.tables import PriceOverrideRow, database

PRICES_REV = "prices_rev"
RATE_FIELDS = ("input_nano", "output_nano", "cached_input_nano", "cache_write_nano", "reasoning_nano")


@dataclass(frozen=True, slots=True)
class Override:
    id: int
    model: str
    provider: str | None
    profile: str | None
    input_nano: int
    output_nano: int
    cached_input_nano: int | None
    cache_write_nano: int | None
    reasoning_nano: int | None
    updated_at: int


def _override(row: PriceOverrideRow) -> Override:
    return Override(
        row.id, row.model, row.provider or None, row.profile or None, row.input_nano, row.output_nano,
        row.cached_input_nano, row.cache_write_nano, row.reasoning_nano, row.updated_at,
    )


def prices_rev() -> int:
    return int(repos.state_get(PRICES_REV, "0") or "0")


def _bump() -> None:
    repos.state_set(PRICES_REV, str(prices_rev() + 1))


def list_overrides() -> list[Override]:
    return [_override(r) for r in PriceOverrideRow.select().order_by(PriceOverrideRow.id)]


def _find(model: str, provider: str | None, profile: str | None) -> PriceOverrideRow | None:
    """The override for this scope, its model compared case-insensitively."""
    key = model.strip().lower()
    query = PriceOverrideRow.select().where(
        (PriceOverrideRow.provider == (provider or "")) & (PriceOverrideRow.profile == (profile or ""))
    )
    for row in query:
        if row.model.strip().lower() == key:
            return row
    return None


def upsert_override(model: str, provider: str | None, profile: str | None, rates: dict[str, int | None]) -> Override:
    """Create or replace the override for (model, provider, profile); returns it."""
    ts = now_ms()
    with database.atomic():
        row = _find(model, provider, profile)
        if row is None:
            row = PriceOverrideRow.create(
                model=model, provider=provider or "", profile=profile or "", created_at=ts, updated_at=ts, **rates
            )
        else:
            row.model = model
            for key, value in rates.items():
                setattr(row, key, value)
            row.updated_at = ts
            row.save()
        _bump()
    return _override(row)


def delete_override(model: str | None = None, provider: str | None = None, profile: str | None = None,
                    override_id: int | None = None) -> Override | None:
    """Remove one override, by id or by scope; returns what was removed (None: nothing matched)."""
    with database.atomic():
        if override_id is not None:
            row = PriceOverrideRow.get_or_none(PriceOverrideRow.id == override_id)
        else:
            row = _find(model or "", provider, profile)
        if row is None:
            return None
        removed = _override(row)
        row.delete_instance()
        _bump()
    return removed
