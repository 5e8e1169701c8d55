"""Who sent each request, Hermit's own overhead, cost columns and activation history."""

from peewee import AutoField, BigIntegerField, CharField, FloatField, IntegerField, Model


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("ledger", "request_id", CharField(max_length=40, default="")),
        migrator.add_column("ledger", "cache_write_tokens", IntegerField(null=True)),
        migrator.add_column("ledger", "cost_nanousd", BigIntegerField(null=True)),
        migrator.add_column("ledger", "upstream_cost_usd", FloatField(null=True)),
        migrator.add_column("ledger", "ttft_ms", FloatField(null=True)),
        migrator.add_column("ledger", "overhead_ms", FloatField(null=True)),
        migrator.add_column("ledger", "client", CharField(max_length=100, null=True)),
        migrator.add_column("ledger", "project", CharField(max_length=200, null=True)),
        migrator.add_column("ledger", "user", CharField(max_length=200, null=True)),
        migrator.add_column("profiles", "embedding_model", CharField(max_length=300, null=True)),
    )

    class ProfileActivations(Model):
        id = AutoField()
        profile_id = IntegerField()
        profile_name = CharField(max_length=200)
        activated_at = BigIntegerField(index=True)
        source = CharField(max_length=16)

        class Meta:
            database = db
            table_name = "profile_activations"

    db.create_tables([ProfileActivations])
