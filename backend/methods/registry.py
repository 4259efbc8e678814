"""Registry of reconstruction methods by name, imported lazily so listing them needs no torch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from protocol.errors import UnknownPreset

from ..settings import load_symbol


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: where its class and settings dataclass live, and what it produces."""

    name: str
    produces: frozenset[str]
    factory: str  # "module:Class"
    settings: str  # "module:Dataclass"
    description: str = ""

    def settings_type(self) -> type:
        """The method's settings dataclass."""
        return load_symbol(self.settings)

    def create(self) -> Any:
        """A fresh method instance."""
        return load_symbol(self.factory)()


_REGISTRY: dict[str, MethodEntry] = {}
PRODUCTS = frozenset({"body", "hands", "camera", "scene"})


def register(entry: MethodEntry) -> None:
    """Add or replace a method."""
    if not entry.produces <= PRODUCTS:
        raise ValueError(f"method {entry.name} produces unknown kinds {sorted(entry.produces - PRODUCTS)}")
    _REGISTRY[entry.name] = entry


def get(name: str) -> MethodEntry:
    """The entry for `name`, or E_UNKNOWN_PRESET naming what exists."""
    load_plugins()
    if name not in _REGISTRY:
        raise UnknownPreset(f"unknown method {name!r}; available: {sorted(_REGISTRY) or 'none'}")
    return _REGISTRY[name]


def available() -> list[MethodEntry]:
    """All registered methods, sorted by name."""
    load_plugins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


_loaded_plugins: set[str] = set()


def load_plugins() -> None:
    """Import the modules named in VIDRIG_PLUGINS (comma-separated); each registers its methods on import."""
    for module in filter(None, (p.strip() for p in os.environ.get("VIDRIG_PLUGINS", "").split(","))):
        if module not in _loaded_plugins:
            _loaded_plugins.add(module)
            __import__(module)
