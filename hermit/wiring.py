"""Build the services every front end shares, from one Settings object."""

from __future__ import annotations

from dataclasses import dataclass, field

import peewee

from hermit.services.events import EventBus
from hermit.services.ledger import LedgerWriter
from hermit.services.profiles import AuthProfileService, ProfileService
from hermit.services.secrets import SecretBox
from hermit.settings import Settings
from hermit.store.db import open_database


@dataclass
class Services:
    settings: Settings
    db: peewee.Database
    box: SecretBox
    profiles: ProfileService
    bus: EventBus = field(default_factory=EventBus)
    writer: LedgerWriter | None = None
    auth_profiles: AuthProfileService | None = None

    def __post_init__(self) -> None:
        if self.auth_profiles is None:
            self.auth_profiles = AuthProfileService(self.settings, self.box)

    @property
    def config(self):
        """Settings persisted in the database (log level)."""
        from hermit.services.config import ConfigService

        return ConfigService()

    def start_writer(self) -> LedgerWriter:
        if self.writer is None:
            self.writer = LedgerWriter()
        return self.writer

    def make_auth(self, client):
        """Upstream credentials for targets (API keys; Copilot token exchange)."""
        from hermit.services.upstream_auth import UpstreamAuth

        return UpstreamAuth(self, client)

    def price(self, entry) -> float | None:
        """Cost of a ledger entry in USD at today's prices; None when the model has no known price."""
        pricing = self.pricing
        return None if pricing is None else pricing.cost(entry)

    @property
    def pricing(self):
        """The pricing service (issue 4); None until it exists."""
        if "_pricing" not in self.__dict__:
            try:
                from hermit.services.pricing import PricingService
            except ModuleNotFoundError:
                self.__dict__["_pricing"] = None
            else:
                self.__dict__["_pricing"] = PricingService(self)
        return self.__dict__["_pricing"]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if not self.db.is_closed():
            self.db.close()


def build_services(settings: Settings | None = None, *, bootstrap: bool = True) -> Services:
    settings = settings or Settings.from_env()
    db = open_database(settings.database_url)
    box = SecretBox(settings.env or {})
    services = Services(settings=settings, db=db, box=box, profiles=ProfileService(settings, box))
    _encrypt_plaintext_secrets(box)
    if bootstrap:
        services.profiles.bootstrap()
    return services


def _encrypt_plaintext_secrets(box: SecretBox) -> None:
    """An older database kept keys and tokens in plain text: encrypt them once, when it is opened."""
    from hermit.services.secrets import PREFIX
    from hermit.store import repos

    count = repos.encrypt_plaintext_secrets(box, PREFIX)
    if count:
        import logging

        logging.getLogger("hermit.secrets").warning(
            "encrypted %d secret(s) stored in plain text by an older version (key: %s)", count, box.source
        )
