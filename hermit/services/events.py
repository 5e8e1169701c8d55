"""An in-process event bus: the proxy publishes request events, views subscribe."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from hermit.core.models import LedgerEntry


@dataclass(slots=True)
class RequestStarted:
    request_id: str
    started_at: int
    endpoint: str
    stream: bool
    provider: str
    upstream_model: str
    profile_name: str | None
    client: str | None


@dataclass(slots=True)
class RequestProgress:
    request_id: str
    completion_tokens: int


@dataclass(slots=True)
class RequestFinished:
    entry: LedgerEntry


@dataclass(slots=True)
class ProfileActivated:
    profile_id: int
    profile_name: str
    source: str


@dataclass
class EventBus:
    """Synchronous fan-out; subscribers must be cheap and must not raise."""

    _subscribers: list[Callable[[Any], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def publish(self, event: Any) -> None:
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a broken view must not break the proxy
                pass
