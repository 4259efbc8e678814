"""Finds and caches body and hand models: the built-in default, or SMPL-X / MANO from the user's folder
(`--models DIR` or env VIDRIG_MODELS, laid out as the smplx package expects)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from backend.models.base import BodyModel, HandModel
from backend.models.default_model import DEFAULT_MODEL_PATH, DefaultBodyModel, DefaultHandModel, DefaultModelData
from backend.models.smplx_model import GENDERS, ManoHandModel, SmplxBodyModel, smplx_path
from protocol.errors import BadRequest, ModelMissing

MODELS_ENV = "VIDRIG_MODELS"
BODY_MODELS = ("default", "smplx")
HAND_MODELS = ("default", "mano")

_lock = threading.Lock()
M = TypeVar("M", BodyModel, HandModel)
_bodies: dict[tuple[str, ...], BodyModel] = {}
_hands: dict[tuple[str, ...], HandModel] = {}
_default_data: dict[Path, DefaultModelData] = {}


def resolve_models_dir(models_dir: Path | str | None) -> Path | None:
    """The user's model folder: the argument, else $VIDRIG_MODELS, else None."""
    if models_dir is not None:
        return Path(models_dir).expanduser()
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else None


def available_body_models(models_dir: Path | str | None = None) -> list[str]:
    """Body model names usable now: always "default", plus "smplx" when any SMPL-X gender file is there."""
    names = ["default"]
    folder = resolve_models_dir(models_dir)
    if folder is not None and any(smplx_path(folder, g).is_file() for g in GENDERS):
        names.append("smplx")
    return names


def _need_dir(models_dir: Path | str | None, what: str) -> Path:
    """The model folder, or ModelMissing saying how to give one."""
    folder = resolve_models_dir(models_dir)
    if folder is None:
        raise ModelMissing(f"No model folder given for {what}: pass --models DIR or set {MODELS_ENV} "
                           f"(DIR/smplx/SMPLX_NEUTRAL.npz, DIR/mano/MANO_RIGHT.pkl).")
    return folder


def default_model_data() -> DefaultModelData:
    """The default model's arrays, read once per process."""
    with _lock:
        if DEFAULT_MODEL_PATH not in _default_data:
            _default_data[DEFAULT_MODEL_PATH] = DefaultModelData.load(DEFAULT_MODEL_PATH)
        return _default_data[DEFAULT_MODEL_PATH]


def load_body_model(name: str, models_dir: Path | str | None = None, gender: str = "neutral",
                    device: str = "cpu") -> BodyModel:
    """A cached body model by name ("default" | "smplx") on `device`, in eval mode."""
    if name not in BODY_MODELS:
        raise BadRequest(f"Unknown body model {name!r}; choose one of {', '.join(BODY_MODELS)}.")
    if gender not in GENDERS:
        raise BadRequest(f"Unknown gender {gender!r}; choose one of {', '.join(GENDERS)}.")
    if name == "default":
        return _cached(_bodies, (name, "", gender, str(device)), lambda: DefaultBodyModel(default_model_data(), gender),
                       device)
    folder = _need_dir(models_dir, "SMPL-X")
    return _cached(_bodies, (name, str(folder), gender, str(device)), lambda: SmplxBodyModel(folder, gender), device)


def load_hand_model(name: str, side: str, models_dir: Path | str | None = None,
                    device: str = "cpu") -> HandModel:
    """A cached hand model by name ("default" | "mano") for side "left" | "right", in eval mode."""
    if name not in HAND_MODELS:
        raise BadRequest(f"Unknown hand model {name!r}; choose one of {', '.join(HAND_MODELS)}.")
    if side not in ("left", "right"):
        raise BadRequest(f"Unknown hand side {side!r}; choose left or right.")
    if name == "default":
        return _cached(_hands, (name, "", side, str(device)), lambda: DefaultHandModel(default_model_data(), side),
                       device)
    folder = _need_dir(models_dir, "MANO")
    return _cached(_hands, (name, str(folder), side, str(device)), lambda: ManoHandModel(folder, side), device)


def _cached(cache: dict[tuple[str, ...], M], key: tuple[str, ...], build: Callable[[], M], device: str) -> M:
    """The cached model for `key`, built, moved to `device` and put in eval mode on first use."""
    with _lock:
        hit = cache.get(key)
    if hit is not None:
        return hit
    model = build().to(device).eval()
    with _lock:
        return cache.setdefault(key, model)
