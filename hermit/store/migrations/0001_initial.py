"""The first schema: profiles, auth profiles, app state and a plain request ledger."""

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    FloatField,
    IntegerField,
    Model,
    TextField,
)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Profiles(Base):
        id = AutoField()
        name = CharField(max_length=200, unique=True)
        provider = CharField(max_length=64)
        base_url = TextField(null=True)
        model = CharField(max_length=300, null=True)
        api_key = TextField(null=True)
        default_max_tokens = IntegerField(null=True)
        allow_client_model_override = BooleanField(default=False)
        auth_profile_id = IntegerField(null=True)
        is_active = BooleanField(default=False)
        created_at = BigIntegerField()
        updated_at = BigIntegerField()
        last_activated_at = BigIntegerField(null=True)

        class Meta:
            table_name = "profiles"

    class AuthProfiles(Base):
        id = AutoField()
        name = CharField(max_length=200, unique=True)
        kind = CharField(max_length=64)
        token = TextField(null=True)
        created_at = BigIntegerField()
        updated_at = BigIntegerField()

        class Meta:
            table_name = "auth_profiles"

    class AppState(Base):
        key = CharField(max_length=100, primary_key=True)
        value = TextField(null=True)

        class Meta:
            table_name = "app_state"

    class Ledger(Base):
        id = AutoField()
        created_at = BigIntegerField(index=True)
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
        latency_ms = FloatField(default=0)
        usage_source = CharField(max_length=16, default="none")
        error = TextField(null=True)

        class Meta:
            table_name = "ledger"

    db.create_tables([Profiles, AuthProfiles, AppState, Ledger])
