"""Optional modules that add commands or routes when present."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterator


def present(module_names: tuple[str, ...]) -> Iterator[ModuleType]:
    """Import each module that exists; a module missing itself is skipped, a broken one raises."""
    for name in module_names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
