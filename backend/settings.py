"""Job settings: typed sections (perception, camera, the method's own) resolved from a preset plus overrides."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import asdict, dataclass, fields
from typing import Any

from protocol.errors import BadRequest

# Shared stage sections; each is a dataclass in a light module (no torch / mediapipe import at load time).
STAGE_SECTIONS: dict[str, str] = {
    "perception": "backend.perception.settings:PerceptionSettings",
    "camera": "backend.camera.types:CameraSettings",
}


def load_symbol(path: str) -> Any:
    """Import `module:attribute`."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class JobSettings:
    """All settings of one job, each section a dataclass instance."""

    sections: dict[str, Any]

    def section(self, name: str) -> Any:
        """One section's dataclass instance."""
        return self.sections[name]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-able nested dict, the form stored in results and used for cache keys."""
        return {name: asdict(value) for name, value in self.sections.items()}


def resolve(method_settings: type, preset: dict[str, Any], overrides: dict[str, Any]) -> JobSettings:
    """Merge defaults <- preset <- overrides; unknown sections or keys and ill-typed values raise BadRequest.

    Keys are `section.key` (sections: perception, camera, method) or nested dicts; a bare key means `method.key`.
    """
    types = {name: load_symbol(path) for name, path in STAGE_SECTIONS.items()}
    types["method"] = method_settings
    values: dict[str, dict[str, Any]] = {name: {} for name in types}
    for source_name, source in (("preset", preset), ("overrides", overrides)):
        for key, value in _flatten(source).items():
            section, _, name = key.rpartition(".")
            section = section or "method"
            if section not in types:
                raise BadRequest(
                    f"unknown settings section {section!r} in {source_name} (sections: {sorted(types)})",
                    details={"key": key},
                )
            known = {f.name: f for f in fields(types[section])}
            if name not in known:
                raise BadRequest(
                    f"unknown setting {key!r} in {source_name}; {section} accepts: {sorted(known)}",
                    details={"key": key, "accepted": sorted(known)},
                )
            values[section][name] = _coerce(key, known[name], value)
    sections = {}
    for name, cls in types.items():
        try:
            sections[name] = cls(**values[name])
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"invalid {name} settings: {exc}") from exc
    return JobSettings(sections)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys (one level of sections)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if not isinstance(key, str):
            raise BadRequest(f"setting names must be strings, got {key!r}")
        if isinstance(value, dict) and not prefix:
            out.update(_flatten(value, f"{key}."))
        else:
            out[prefix + key] = value
    return out


def _coerce(key: str, f: dataclasses.Field, value: Any) -> Any:
    """Check a value against the field's declared type (bool, int, float, str, optional, or tuple/list)."""
    text = str(f.type)
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise BadRequest(f"setting {key!r} may not be null")
    base = text.replace(" | None", "").strip()
    if base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base == "str":
        ok = isinstance(value, str)
    elif base.startswith(("tuple", "list")):
        ok = isinstance(value, list | tuple)
        value = tuple(value) if ok and base.startswith("tuple") else value
    else:
        ok = True
    if not ok:
        raise BadRequest(f"setting {key!r} must be {base}, got {value!r}")
    return value
