"""Settings resolution and preset files: unknown methods, unknown keys and ill-typed values are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.support.methods  # noqa: F401 - registers the test method `testcount`
from backend.pipeline import make_spec
from backend.presets import get_preset, load_presets, parse_preset
from backend.settings import resolve
from protocol.errors import BadRequest, ErrorCode, UnknownPreset, VidrigError
from tests.support.methods import FrameCountSettings


@pytest.fixture
def preset_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty preset folder that VIDRIG_PRESETS points at."""
    folder = tmp_path / "presets"
    folder.mkdir()
    monkeypatch.setenv("VIDRIG_PRESETS", str(folder))
    return folder


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def test_defaults_preset_then_overrides() -> None:
    settings = resolve(
        FrameCountSettings,
        {"delay": 0.5, "camera": {"fov_deg": 70}},
        {"method.delay": 1, "camera.max_side": 320, "salt": "x"},
    )
    method = settings.section("method")
    assert (method.delay, method.salt, method.ignore_cancel) == (1.0, "x", False)
    assert isinstance(method.delay, float)
    camera = settings.section("camera")
    assert (camera.fov_deg, camera.max_side) == (70.0, 320)
    assert settings.section("perception").max_side == 1280
    as_dict = settings.to_dict()
    assert set(as_dict) == {"perception", "camera", "method"} and as_dict["method"]["salt"] == "x"
    again = resolve(FrameCountSettings, as_dict, {})
    assert again.to_dict() == as_dict


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"dealy": 1.0}, "dealy"),
        ({"method.nope": 1}, "method.nope"),
        ({"camera.fov": 50}, "camera.fov"),
        ({"perception": {"max_sidee": 5}}, "perception.max_sidee"),
    ],
)
def test_unknown_keys_are_named(overrides: dict, key: str) -> None:
    with pytest.raises(BadRequest, match=key.replace(".", r"\.")) as info:
        resolve(FrameCountSettings, {}, overrides)
    assert info.value.details["key"] == key and info.value.details["accepted"]


def test_unknown_section_is_named() -> None:
    with pytest.raises(BadRequest, match="'render'") as info:
        resolve(FrameCountSettings, {}, {"render.samples": 4})
    assert info.value.details == {"key": "render.samples"}


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"delay": "fast"}, "delay"),
        ({"delay": True}, "delay"),
        ({"ignore_cancel": 1}, "ignore_cancel"),
        ({"exit_code": 1.5}, "exit_code"),
        ({"exit_code": True}, "exit_code"),
        ({"salt": 3}, "salt"),
        ({"salt": None}, "salt"),
        ({"camera.max_side": 640.0}, "camera.max_side"),
        ({"camera.use_person_segmentation": "yes"}, "camera.use_person_segmentation"),
        ({"perception.search_zooms": 2.0}, "perception.search_zooms"),
        ({"perception.min_detection_confidence": "0.5"}, "perception.min_detection_confidence"),
    ],
)
def test_bad_types_are_refused(overrides: dict, key: str) -> None:
    with pytest.raises(BadRequest, match=f"setting '{key}'"):
        resolve(FrameCountSettings, {}, overrides)


def test_optional_fields_accept_null() -> None:
    settings = resolve(FrameCountSettings, {}, {"exit_code": None, "camera.focal_px": None})
    assert settings.section("method").exit_code is None


def test_valid_preset_file(preset_dir: Path) -> None:
    _write(
        preset_dir,
        "quickcount",
        'method = "testcount"\ndescription = "fast"\n[settings]\ndelay = 0.25\n[settings.camera]\nfov_deg = 40.0\n',
    )
    preset = get_preset("quickcount")
    assert (preset.method, preset.description) == ("testcount", "fast")
    assert preset.settings == {"delay": 0.25, "camera": {"fov_deg": 40.0}}
    spec = make_spec("/v.mp4", preset="quickcount", overrides={"salt": "s"})
    assert spec.method == "testcount" and spec.preset == "quickcount"
    assert spec.settings["method"]["delay"] == 0.25 and spec.settings["method"]["salt"] == "s"
    assert spec.settings["camera"]["fov_deg"] == 40.0


def test_preset_with_unknown_method(preset_dir: Path) -> None:
    path = _write(preset_dir, "ghost", 'method = "no-such-method"\n')
    with pytest.raises(UnknownPreset, match="no-such-method"):
        parse_preset(path)
    with pytest.raises(VidrigError, match="'ghost' is invalid") as info:
        get_preset("ghost")
    assert info.value.code is ErrorCode.UNKNOWN_PRESET
    presets, problems = load_presets()
    assert "ghost" not in presets and "no-such-method" in problems["ghost"]


def test_unknown_preset_and_method_names() -> None:
    with pytest.raises(UnknownPreset, match="unknown preset 'nothing-here'"):
        get_preset("nothing-here")
    with pytest.raises(UnknownPreset, match="unknown method 'nope'") as info:
        make_spec("/v.mp4", method="nope")
    assert info.value.code is ErrorCode.UNKNOWN_PRESET


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('method = "testcount"\n[settings]\ndelya = 1.0\n', "delya"),
        ('method = "testcount"\n[settings.camera]\nfov = 1.0\n', r"camera\.fov"),
        ('method = "testcount"\n[settings]\ndelay = "slow"\n', "delay"),
        ('method = "testcount"\nsetings = {}\n', "setings"),
        ("method = 3\n", "'method' must be a string"),
        ('method = "testcount"\nsettings = 5\n', "must be a table"),
        ('method = "testcount"\n[settings\n', "cannot be read"),
    ],
)
def test_broken_preset_files_are_refused_by_name(preset_dir: Path, text: str, match: str) -> None:
    path = _write(preset_dir, "broken", text)
    with pytest.raises(BadRequest, match=match):
        parse_preset(path)
    with pytest.raises(UnknownPreset, match="'broken' is invalid"):
        make_spec("/v.mp4", preset="broken")


def test_preset_and_method_must_agree(preset_dir: Path) -> None:
    _write(preset_dir, "counting", 'method = "testcount"\n')
    with pytest.raises(BadRequest, match="uses method 'testcount', not 'fit'"):
        make_spec("/v.mp4", preset="counting", method="fit")
    with pytest.raises(BadRequest, match="preset or a method"):
        make_spec("/v.mp4")
