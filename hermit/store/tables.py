"""peewee table models for the current schema (migrations hold frozen copies)."""

from __future__ import annotations

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    FloatField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()


class BaseRow(Model):
    class Meta:
        database = database
        legacy_table_names = False


class ProfileRow(BaseRow):
    id = AutoField()
    name = CharField(max_length=200, unique=True)
    provider = CharField(max_length=64)
    base_url = TextField(null=True)
    model = CharField(max_length=300, null=True)
    api_key = TextField(null=True)  # encrypted at rest
    default_max_tokens = IntegerField(null=True)
    allow_client_model_override = BooleanField(default=False)
    embedding_model = CharField(max_length=300, null=True)
    auth_profile_id = IntegerField(null=True)
    is_active = BooleanField(default=False)
    created_at = BigIntegerField()
    updated_at = BigIntegerField()
    last_activated_at = BigIntegerField(null=True)

    class Meta:
        table_name = "profiles"


class AuthProfileRow(BaseRow):
    id = AutoField()
    name = CharField(max_length=200, unique=True)
    kind = CharField(max_length=64)
    token = TextField(null=True)  # encrypted at rest
    created_at = BigIntegerField()
    updated_at = BigIntegerField()

    class Meta:
        table_name = "auth_profiles"


class AppStateRow(BaseRow):
    key = CharField(max_length=100, primary_key=True)
    value = TextField(null=True)

    class Meta:
        table_name = "app_state"


class ActivationRow(BaseRow):
    id = AutoField()
    profile_id = IntegerField()
    profile_name = CharField(max_length=200)
    activated_at = BigIntegerField(index=True)
    source = CharField(max_length=16)

    class Meta:
        table_name = "profile_activations"


class LedgerRow(BaseRow):
    id = AutoField()
    request_id = CharField(max_length=40)
    created_at = BigIntegerField(index=True)  # epoch milliseconds, UTC
    profile_id = IntegerField(null=True)
    profile_name = CharField(max_length=200, null=True)
    provider = CharField(max_length=64)
    upstream_model = CharField(max_length=300)
    client_model = CharField(max_length=300, null=True)
    endpoint = CharField(max_length=16)
    stream = BooleanField(default=False)
    status_code = IntegerField()
    prompt_tokens = IntegerField(default=0)
    completion_tokens = IntegerField(default=0)
    total_tokens = IntegerField(default=0)
    cached_tokens = IntegerField(null=True)
    reasoning_tokens = IntegerField(null=True)
    cache_write_tokens = IntegerField(null=True)
    cost_nanousd = BigIntegerField(null=True)  # cost in 1e-9 USD; NULL = unpriced
    upstream_cost_usd = FloatField(null=True)  # what the provider itself reported
    latency_ms = FloatField(default=0)
    ttft_ms = FloatField(null=True)
    overhead_ms = FloatField(null=True)
    usage_source = CharField(max_length=16, default="none")
    client = CharField(max_length=100, null=True)
    project = CharField(max_length=200, null=True)
    user = CharField(max_length=200, null=True)
    error = TextField(null=True)

    class Meta:
        table_name = "ledger"


ALL_TABLES = (ProfileRow, AuthProfileRow, AppStateRow, ActivationRow, LedgerRow)


# -- analytics and billing (issue 4) --------------------------------------------------------


class PriceOverrideRow(BaseRow):
    """An operator's price for a model, optionally only for one provider or one profile.

    Prices are integer nano-USD per million tokens, so 0.075 USD/M is 75_000_000 exactly.
    '' in provider/profile means "any" (NULLs would defeat the unique key).
    """

    id = AutoField()
    model = CharField(max_length=300)
    provider = CharField(max_length=64, default="")
    profile = CharField(max_length=200, default="")
    input_nano = BigIntegerField()
    output_nano = BigIntegerField()
    cached_input_nano = BigIntegerField(null=True)
    cache_write_nano = BigIntegerField(null=True)
    reasoning_nano = BigIntegerField(null=True)
    created_at = BigIntegerField()
    updated_at = BigIntegerField()

    class Meta:
        table_name = "price_overrides"
        indexes = ((("model", "provider", "profile"), True),)


class LedgerRollupRow(BaseRow):
    """Ledger sums per 15-minute slot and (provider, model, profile), kept by database triggers."""

    bucket_start = BigIntegerField()  # epoch ms UTC, a multiple of 900_000
    provider = CharField(max_length=64)
    upstream_model = CharField(max_length=300)
    profile_name = CharField(max_length=200, default="")  # '' = no profile
    requests = BigIntegerField(default=0)
    successful = BigIntegerField(default=0)
    prompt_tokens = BigIntegerField(default=0)
    completion_tokens = BigIntegerField(default=0)
    total_tokens = BigIntegerField(default=0)
    cached_tokens = BigIntegerField(default=0)
    reasoning_tokens = BigIntegerField(default=0)
    cost_nanousd = BigIntegerField(default=0)  # priced rows only
    priced_requests = BigIntegerField(default=0)
    unpriced_tokens = BigIntegerField(default=0)
    latency_us = BigIntegerField(default=0)
    quick_tests = BigIntegerField(default=0)

    class Meta:
        table_name = "ledger_rollup"
        primary_key = CompositeKey("bucket_start", "provider", "upstream_model", "profile_name")
