"""Persisted settings kept in the database (app state), such as the default log level."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from hermit.store import repos

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_LOG_LEVEL = "info"
WATCH_SECONDS = 2.0


class InvalidSetting(ValueError):
    pass


class ConfigService:
    def log_level(self) -> str:
        value = (repos.state_get("log_level") or "").lower()
        return value if value in LOG_LEVELS else DEFAULT_LOG_LEVEL

    def set_log_level(self, level: str) -> str:
        value = (level or "").strip().lower()
        if value not in LOG_LEVELS:
            raise InvalidSetting(f"invalid log level {level!r}; valid levels: {', '.join(LOG_LEVELS)}")
        repos.state_set("log_level", value)
        return value

    def watch(self, loop: asyncio.AbstractEventLoop, executor: Executor) -> asyncio.Task:
        """Apply a log level changed by another process within a few seconds."""

        async def poll() -> None:
            current = logging.getLevelName(logging.getLogger().level).lower()
            while True:
                await asyncio.sleep(WATCH_SECONDS)
                try:
                    level = await loop.run_in_executor(executor, self.log_level)
                except Exception:  # noqa: BLE001 - keep the old level
                    continue
                if level != current:
                    logging.getLogger().setLevel(level.upper())
                    logging.getLogger("hermit.server").warning("log level is now %s", level)
                    current = level

        return loop.create_task(poll())
