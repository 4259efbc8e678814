"""Named presets (`presets/*.toml`): a method plus its settings; unknown methods or keys are rejected."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import BadRequest, UnknownPreset

from .methods import registry
from .settings import resolve

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "presets"


@dataclass(frozen=True)
class Preset:
    """One named preset as written in its TOML file."""

    name: str
    method: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def preset_dirs() -> list[Path]:
    """Where presets are read from: the built-in folder, then any in VIDRIG_PRESETS (os.pathsep-separated)."""
    extra = [Path(p) for p in os.environ.get("VIDRIG_PRESETS", "").split(os.pathsep) if p]
    return [BUILTIN_DIR, *extra]


def parse_preset(path: Path) -> Preset:
    """Read and validate one preset file: known top-level keys, a registered method, known setting keys."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadRequest(f"preset file {path} cannot be read: {exc}") from exc
    unknown = set(data) - {"method", "description", "settings"}
    if unknown:
        raise BadRequest(
            f"preset {path.name}: unknown top-level keys {sorted(unknown)} (allowed: method, description, settings)"
        )
    method = data.get("method")
    if not isinstance(method, str):
        raise BadRequest(f"preset {path.name}: 'method' must be a string")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise BadRequest(f"preset {path.name}: [settings] must be a table")
    entry = registry.get(method)
    resolve(entry.settings_type(), settings, {})
    return Preset(path.stem, method, str(data.get("description", "")), settings, path)


def load_presets() -> tuple[dict[str, Preset], dict[str, str]]:
    """All valid presets by name, and the problems of those that failed to load (name -> message)."""
    presets: dict[str, Preset] = {}
    problems: dict[str, str] = {}
    for directory in preset_dirs():
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
            try:
                presets[path.stem] = parse_preset(path)
            except (BadRequest, UnknownPreset) as exc:
                problems[path.stem] = exc.message
    return presets, problems


def get_preset(name: str) -> Preset:
    """A preset by name, or E_UNKNOWN_PRESET listing the available ones (and why a broken one failed)."""
    presets, problems = load_presets()
    if name in presets:
        return presets[name]
    if name in problems:
        raise UnknownPreset(f"preset {name!r} is invalid: {problems[name]}")
    raise UnknownPreset(f"unknown preset {name!r}; available: {sorted(presets) or 'none'}")
