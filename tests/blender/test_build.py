"""The built extension zip: layout, manifest, wheels, and Blender's own validator when a Blender binary exists."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import build_addon


def test_zip_layout_and_manifest(built_zip):
    """Manifest at the root with id, permissions and version range; add-on, protocol package and maps inside."""
    path, with_wheels = built_zip
    manifest = build_addon.validate_zip(path, expect_wheels=with_wheels)
    assert manifest["id"] == "vidrig" and manifest["blender_version_min"] == "4.2.0"
    assert set(manifest["permissions"]) == {"network", "files"}
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        for module in ("__init__.py", "link.py", "importer.py", "retarget.py", "protocol/messages.py"):
            assert module in names
        protocol = zf.read("protocol/client.py").decode()
    assert not re.search(r"^\s*(import|from)\s+torch", protocol, re.M)
    assert not any(n.startswith(("tests/", "backend/")) for n in names)


def test_zip_bundles_pyzmq_wheels_for_every_platform(built_zip):
    """cp311 wheels for Linux, macOS and Windows plus the abi3 ones for Python 3.13 (Blender 5.1)."""
    path, with_wheels = built_zip
    assert with_wheels, "the zip was built without wheels: PyPI unreachable and no wheel cache in build/"
    with zipfile.ZipFile(path) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    wheels = [Path(w).name for w in manifest["wheels"]]
    assert all(w.startswith(f"pyzmq-{build_addon.PYZMQ_VERSION}-") for w in wheels)
    for platform in ("manylinux", "macosx", "win_amd64"):
        assert any(platform in w and "cp311-cp311" in w for w in wheels)
        assert any(platform in w and "abi3" in w for w in wheels)


def test_validate_rejects_a_broken_zip(tmp_path):
    """A zip without its manifest, or with a manifest lacking permissions, is refused with the reason."""
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("__init__.py", "")
    with pytest.raises(build_addon.BuildError, match=r"blender_manifest\.toml is not at the zip root"):
        build_addon.validate_zip(empty)
    text = (build_addon.ADDON_DIR / build_addon.MANIFEST).read_text()
    no_perm = tmp_path / "noperm.zip"
    with zipfile.ZipFile(no_perm, "w") as zf:
        zf.writestr(build_addon.MANIFEST, text.split("[permissions]")[0])
    with pytest.raises(build_addon.BuildError, match="permission 'network'"):
        build_addon.validate_zip(no_perm, expect_wheels=False)


def test_offline_download_fails_with_a_clear_message(tmp_path, monkeypatch):
    """Without PyPI the build names the problem and where to put the wheels."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    target = build_addon.WHEEL_TARGETS[:1]
    with pytest.raises(build_addon.BuildError, match="are you offline"):
        build_addon.download_wheels(tmp_path / "cache", target)


def test_blenders_own_validator_accepts_the_zip(built_zip):
    """The extension validator shipped inside bpy (the code behind `blender --command extension validate`)."""
    import bpy

    script = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    assert script.is_file(), script
    proc = subprocess.run(
        [sys.executable, str(script), "validate", str(built_zip[0])], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr

