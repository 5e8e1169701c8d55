"""The active profile, cached in memory and refreshed when any process changes profiles."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from hermit.services.profiles import ProfileService, Target
from hermit.store import repos

log = logging.getLogger("hermit.active")
POLL_SECONDS = 0.25


class ActiveTarget:
    """Holds the resolved target of the active profile for the proxy.

    A poll of one tiny row (the profiles revision counter) every quarter second, on a
    database thread, notices activations made by other processes; the proxy itself reads
    only memory on each request. Requests already in flight keep the target they started with.
    """

    def __init__(self, profiles: ProfileService, executor: ThreadPoolExecutor, on_change: Callable[[Target | None], None]):
        self.profiles = profiles
        self.executor = executor
        self.on_change = on_change
        self.revision: int | None = None
        self._task: asyncio.Task | None = None

    def _load(self) -> tuple[int, Target | None]:
        rev = repos.profiles_rev()
        return rev, self.profiles.active_target()

    async def refresh(self) -> Target | None:
        loop = asyncio.get_running_loop()
        rev, target = await loop.run_in_executor(self.executor, self._load)
        self.revision = rev
        self.on_change(target)
        return target

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                rev = await loop.run_in_executor(self.executor, repos.profiles_rev)
                if rev != self.revision:
                    target = await self.refresh()
                    log.info(
                        "active profile is now %s",
                        f"{target.profile_name} ({target.provider.name}, {target.model})" if target else "none",
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving with the last known profile
                log.warning("could not check the active profile: %s", exc)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
