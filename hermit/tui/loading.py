"""The app's database reads, all on its DB thread: first load, profile reloads, watch-only polling."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work

from hermit.services import tui_support


class LoadingMixin:
    """Part of HermitApp: everything that reads the database. Nothing here blocks the event loop."""

    @work(exclusive=True, group="initial", exit_on_error=False)
    async def load_initial(self) -> None:
        services, db, clock = self.services, self.db, self.clock
        try:
            recent = await db.call(tui_support.recent_entries, self.backfill)
            until = clock.now_ms()
            today = await db.call(self.analytics.summary, clock.start_of_day_ms(), until, clock.tz)
            profiles = await db.call(tui_support.profile_rows, services)
        except Exception as exc:  # noqa: BLE001
            self.notify(tui_support.describe_open_error(exc), title="Cannot read the database", severity="error")
            self.ready.set()
            return
        for _ in range(500):  # the screen composes concurrently; apply once its panels exist
            if self.main is not None and self.main.composed:
                break
            await asyncio.sleep(0.01)
        self.feed.add_entries(recent, backfill=True)
        self.feed.set_today_baseline(today, until)
        self._last_id = max((e.id or 0 for e in recent), default=0)
        self._set_profiles(profiles)
        self._tick()
        self.main.query_one("#analytics-panel").load()
        self.ready.set()

    def _set_profiles(self, profiles: list[dict[str, Any]]) -> None:
        self.profiles = profiles
        if self.main is not None and self.main.composed:
            self.main.query_one("#profiles-panel").set_profiles(profiles)

    def reload_profiles(self) -> None:
        self.run_worker(self.reload_profiles_now(), group="profiles", exclusive=True, exit_on_error=False)

    async def reload_profiles_now(self) -> None:
        if self.services is None:
            return
        profiles = await self.db.call(tui_support.profile_rows, self.services)
        self._set_profiles(profiles)

    async def apply_active_profile(self) -> None:
        """Make the proxy pick up a new active profile now, not at its next poll."""
        active = getattr(self.server, "active", None)
        if self.mode == "server" and active is not None:
            await active.refresh()

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def watch_database(self) -> None:
        """Watch only: poll cheaply (file stat for SQLite), read new rows only when something changed."""
        await self.ready.wait()
        url = self.services.settings.database_url
        signature = rev = None
        while True:
            await asyncio.sleep(self.watch_seconds)
            new_sig = tui_support.file_signature(url)
            if new_sig is not None and new_sig == signature:
                continue
            signature = new_sig
            try:
                entries = await self.db.call(tui_support.entries_after, self._last_id)
                new_rev = await self.db.call(tui_support.profiles_revision)
            except Exception:  # noqa: BLE001 - the other process may hold a lock; try again next time
                continue
            if entries:
                self._last_id = entries[-1].id or self._last_id
                self.feed.add_entries(entries)
            if new_rev != rev:
                if rev is not None:
                    await self.reload_profiles_now()
                rev = new_rev
