"""Prices: the bundled table plus operator overrides, and the cost of a ledger row when it is written.

Rates are integer nano-USD per million tokens and costs integer nano-USD, so every sum is
exact. `cost()` runs in the proxy's event loop for every row: it reads an immutable in-memory
table (rebuilt only when the overrides change) and a per-model cache, never the database.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hermit.core.models import iso_from_ms

BUNDLED_PATH = Path(__file__).resolve().parent.parent / "data" / "prices.json"
LOCAL_PROVIDERS = ("ollama", "vllm", "lmstudio")  # bundled as free ('*' rows), overridable
RESELLERS = ("openrouter", "openai-compatible")  # also matched by model name against every provider's prices
MAX_USD_PER_MILLION = Decimal(1_000_000)
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest)$")
_CACHE_LIMIT = 10_000


class PriceError(ValueError):
    """A price Hermit refuses; `field` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PriceNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Price:
    """One row of the effective price table (rates in nano-USD per million tokens)."""

    model: str
    provider: str | None
    profile: str | None
    input: int
    output: int
    cached_input: int | None
    cache_write: int | None
    reasoning: int | None
    source: str  # bundled | override
    as_of: str | None
    reference: str | None = None
    note: str | None = None
    id: int | None = None
    aliases: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "provider": self.provider,
            "profile": self.profile,
            "input": usd(self.input),
            "output": usd(self.output),
            "cached_input": usd(self.cached_input),
            "cache_write": usd(self.cache_write),
            "source": self.source,
            "as_of": self.as_of,
            "reasoning": usd(self.reasoning),
            "reference": self.reference,
            "note": self.note,
            "aliases": list(self.aliases),
        }


def usd(nano: int | None) -> float | None:
    return None if nano is None else nano / 1e9


def to_nano(value: Any, name: str, required: bool = True) -> int | None:
    """A USD-per-million price (number or decimal string) as exact integer nano-USD."""
    if value is None or value == "":
        if required:
            raise PriceError(f"{name} is required (USD per million tokens)", name)
        return None
    if isinstance(value, bool):
        raise PriceError(f"{name} must be a number of USD per million tokens, got {value!r}", name)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PriceError(f"{name} must be a number of USD per million tokens, got {value!r}", name) from None
    if not amount.is_finite() or amount < 0:
        raise PriceError(f"{name} must be zero or more USD per million tokens, got {value!r}", name)
    if amount > MAX_USD_PER_MILLION:
        raise PriceError(f"{name} of {value} USD per million tokens is not plausible", name)
    return int((amount * 1_000_000_000).to_integral_value())


def model_keys(model: str) -> list[str]:
    """The names a model is looked up by: itself, without a vendor prefix, without a date suffix."""
    name = (model or "").strip().lower()
    keys = [name]
    base = name.rsplit("/", 1)[-1]
    if base != name:
        keys.append(base)
    for key in list(keys):
        short = _DATE_SUFFIX.sub("", key)
        if short and short != key:
            keys.append(short)
    return keys


def row_cost_nano(price: Price, prompt: int, completion: int, cached: int | None, cache_write: int | None,
                  reasoning: int | None) -> int:
    """Integer nano-USD for one row; cached and cache-write tokens are part of `prompt`."""
    prompt, completion = max(prompt or 0, 0), max(completion or 0, 0)
    cached = min(max(cached or 0, 0), prompt)
    written = min(max(cache_write or 0, 0), prompt - cached)
    reasoning = min(max(reasoning or 0, 0), completion)
    scaled = (
        (prompt - cached - written) * price.input
        + cached * (price.input if price.cached_input is None else price.cached_input)
        + written * (price.input if price.cache_write is None else price.cache_write)
        + (completion - reasoning) * price.output
        + reasoning * (price.output if price.reasoning is None else price.reasoning)
    )
    return (scaled + 500_000) // 1_000_000  # rates are per million tokens; round half up


def load_bundled(path: Path = BUNDLED_PATH) -> list[Price]:
    doc = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    prices = []
    for item in doc["prices"]:
        prices.append(Price(
            model=item["model"], provider=item["provider"], profile=None,
            input=to_nano(item["input"], "input"), output=to_nano(item["output"], "output"),
            cached_input=to_nano(item.get("cached_input"), "cached_input", False),
            cache_write=to_nano(item.get("cache_write"), "cache_write", False),
            reasoning=to_nano(item.get("reasoning"), "reasoning", False),
            source="bundled", as_of=item.get("as_of"), reference=item.get("reference"), note=item.get("note"),
            aliases=tuple(item.get("aliases", ())),
        ))
    return prices


class _Scope:
    """Exact names and '*' patterns of one scope (a profile, a provider, or any)."""

    __slots__ = ("exact", "patterns")

    def __init__(self) -> None:
        self.exact: dict[str, Price] = {}
        self.patterns: list[tuple[str, Price]] = []

    def add(self, name: str, price: Price) -> None:
        key = name.strip().lower()
        if "*" in key or "?" in key:
            self.patterns.append((key, price))
        else:
            self.exact.setdefault(key, price)

    def find(self, keys: list[str]) -> Price | None:
        for key in keys:
            if key in self.exact:
                return self.exact[key]
        for pattern, price in self.patterns:
            if fnmatch.fnmatchcase(keys[0], pattern):
                return price
        return None


class PriceTable:
    """An immutable snapshot: bundled prices and overrides, indexed for lookups."""

    def __init__(self, bundled: list[Price], overrides: list[Price], revision: int = 0) -> None:
        self.bundled, self.overrides, self.revision = bundled, overrides, revision
        self._profile: dict[str, _Scope] = {}
        self._provider: dict[str, _Scope] = {}
        self._any = _Scope()
        self._bundled: dict[str, _Scope] = {}
        self._by_model = _Scope()
        for price in overrides:
            if price.profile:
                scope = self._profile.setdefault(price.profile, _Scope())
            elif price.provider:
                scope = self._provider.setdefault(price.provider, _Scope())
            else:
                scope = self._any
            scope.add(price.model, price)
        for price in bundled:
            for name in (price.model, *price.aliases):
                self._bundled.setdefault(price.provider or "", _Scope()).add(name, price)
                if "*" not in name:
                    self._by_model.add(name, price)
        self._cache: dict[tuple[str, str, str], tuple[Price | None, bool]] = {}

    def lookup(self, provider: str, model: str, profile: str | None) -> tuple[Price | None, bool]:
        """(price, is_fallback): overrides, then the provider's bundled prices; for resellers,
        any provider's bundled price of that model name as a fallback."""
        key = (provider or "", model or "", profile or "")
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        keys = model_keys(model)
        scopes = [self._profile.get(profile or ""), self._provider.get(provider or ""), self._any,
                  self._bundled.get(provider or "")]
        result: tuple[Price | None, bool] = (None, False)
        for scope in scopes:
            price = scope.find(keys) if scope is not None else None
            if price is not None:
                result = (price, False)
                break
        else:
            if provider in RESELLERS:
                price = self._by_model.find(keys)
                if price is not None:
                    result = (price, True)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[key] = result
        return result

    def cost_nano(self, entry) -> int | None:
        """The row's cost in nano-USD at these prices; None when it has no known price."""
        price, fallback = self.lookup(entry.provider, entry.upstream_model, entry.profile_name)
        upstream = getattr(entry, "upstream_cost_usd", None)
        if upstream is not None and (price is None or fallback):
            return int(round(Decimal(str(upstream)) * 1_000_000_000))  # the provider's own figure
        if price is None:
            return None
        return row_cost_nano(price, entry.prompt_tokens, entry.completion_tokens, entry.cached_tokens,
                             entry.cache_write_tokens, entry.reasoning_tokens)

    def effective(self) -> list[Price]:
        """Overrides, then the bundled prices that no provider-wide or global override replaces."""
        shadowed = {
            (p.provider, k) for p in self.overrides if not p.profile for k in [p.model.strip().lower()]
        }
        keep = [
            b for b in self.bundled
            if (b.provider, b.model.lower()) not in shadowed and (None, b.model.lower()) not in shadowed
        ]
        overrides = sorted(self.overrides, key=lambda p: (p.model.lower(), p.provider or "", p.profile or ""))
        return overrides + sorted(keep, key=lambda p: (p.provider or "", p.model.lower()))


class PricingService:
    """Prices for every front end; one per Services (see hermit.wiring)."""

    def __init__(self, services=None) -> None:
        self.services = services
        self._bundled: list[Price] | None = None
        self._table: PriceTable | None = None
        self._lock = threading.Lock()

    # -- the hot path ----------------------------------------------------------------------

    @property
    def table(self) -> PriceTable:
        table = self._table
        return table if table is not None else self.load()

    def cost_nanousd(self, entry) -> int | None:
        return self.table.cost_nano(entry)

    def cost(self, entry) -> float | None:
        """USD for a ledger entry at the prices in effect now (None: unpriced)."""
        nano = self.table.cost_nano(entry)
        return None if nano is None else nano / 1e9

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> PriceTable:
        """Read the overrides (database) and build a new table; safe from any thread."""
        from hermit.store import price_store

        with self._lock:
            if self._bundled is None:
                self._bundled = load_bundled()
            revision = price_store.prices_rev()
            overrides = [_from_override(o) for o in price_store.list_overrides()]
            self._table = PriceTable(self._bundled, overrides, revision)
            return self._table

    def refresh_if_changed(self) -> bool:
        """Reload when another process changed the overrides; True when it did."""
        from hermit.store import price_store

        if self._table is not None and price_store.prices_rev() == self._table.revision:
            return False
        self.load()
        return True

    # -- management ------------------------------------------------------------------------

    def list(self, provider: str | None = None, model: str | None = None) -> list[Price]:
        prices = self.load().effective()
        if provider:
            wanted = _canonical_provider(provider)
            prices = [p for p in prices if p.provider == wanted]
        if model:
            needle = model.strip().lower()
            prices = [p for p in prices if needle in p.model.lower() or any(needle in a.lower() for a in p.aliases)]
        return prices

    def set(self, model: Any, input: Any, output: Any, cached_input: Any = None, cache_write: Any = None,
            provider: Any = None, profile: Any = None, reasoning: Any = None) -> Price:
        from hermit.store import price_store

        model, provider, profile = _scope(model, provider, profile)
        rates = {
            "input_nano": to_nano(input, "input"),
            "output_nano": to_nano(output, "output"),
            "cached_input_nano": to_nano(cached_input, "cached_input", False),
            "cache_write_nano": to_nano(cache_write, "cache_write", False),
            "reasoning_nano": to_nano(reasoning, "reasoning", False),
        }
        saved = price_store.upsert_override(model, provider, profile, rates)
        self.load()
        return _from_override(saved)

    def unset(self, model: Any, provider: Any = None, profile: Any = None) -> Price:
        from hermit.store import price_store

        model, provider, profile = _scope(model, provider, profile, check_profile=False)
        removed = price_store.delete_override(model, provider, profile)
        if removed is None:
            where = f" for provider {provider}" if provider else f" for profile {profile}" if profile else ""
            raise PriceNotFound(f"no price override for model {model!r}{where} (see `hermit prices list`)")
        self.load()
        return _from_override(removed)

    def delete(self, override_id: int) -> Price:
        from hermit.store import price_store

        removed = price_store.delete_override(override_id=override_id)
        if removed is None:
            raise PriceNotFound(f"no price override with id {override_id} "
                                "(bundled prices cannot be deleted, only overridden)")
        self.load()
        return _from_override(removed)


def _from_override(o) -> Price:
    return Price(
        model=o.model, provider=o.provider, profile=o.profile, input=o.input_nano, output=o.output_nano,
        cached_input=o.cached_input_nano, cache_write=o.cache_write_nano, reasoning=o.reasoning_nano,
        source="override", as_of=iso_from_ms(o.updated_at), id=o.id,
    )


def _canonical_provider(name: str) -> str:
    from hermit.core.providers import UnknownProvider, canonical_name

    try:
        return canonical_name(name)
    except UnknownProvider as exc:
        raise PriceError(str(exc), "provider") from None


def _scope(model: Any, provider: Any, profile: Any, check_profile: bool = True) -> tuple[str, str | None, str | None]:
    if not isinstance(model, str) or not model.strip():
        raise PriceError("model is required: the model name sent upstream, e.g. gpt-4o", "model")
    if len(model) > 300:
        raise PriceError("model is longer than 300 characters", "model")
    for name, value in (("provider", provider), ("profile", profile)):
        if value is not None and not isinstance(value, str):
            raise PriceError(f"{name} must be a string", name)
    provider = provider.strip() if provider else None
    profile = profile.strip() if profile else None
    if provider and profile:
        raise PriceError("give either a provider or a profile, not both", "profile")
    if provider:
        provider = _canonical_provider(provider)
    if profile and check_profile:
        from hermit.store import repos

        try:
            profile = repos.find_profile(profile).name
        except repos.NotFound:
            raise PriceNotFound(f"no profile named {profile!r} (see `hermit profiles list`)") from None
    return model.strip(), provider, profile
