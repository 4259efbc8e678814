"""Build the installable VidRig Blender extension zip: add-on code, the protocol package and pyzmq wheels.

Usage: `python build_addon.py [--out dist] [--cache build/wheel_cache] [--no-wheels]`.
The pyzmq wheels listed in `blender_addon/blender_manifest.toml` are downloaded from PyPI with
`pip download --only-binary=:all:` into a cache folder on first use; they are never committed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_DIR = ROOT / "blender_addon"
PROTOCOL_DIR = ROOT / "protocol"
MANIFEST = "blender_manifest.toml"
PYZMQ_VERSION = "27.1.0"
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class WheelTarget:
    """One `pip download` request: a pip platform tag, a Python version and the ABIs accepted."""

    platform: str
    python_version: str
    abis: tuple[str, ...]


WHEEL_TARGETS: tuple[WheelTarget, ...] = tuple(
    WheelTarget(platform, python, abis)
    for platform in ("manylinux_2_28_x86_64", "macosx_11_0_arm64", "win_amd64")
    for python, abis in (("3.11", ("cp311",)), ("3.13", ("abi3",)))
)


class BuildError(RuntimeError):
    """The extension cannot be built; the message says why and what to do."""


def read_manifest(path: Path = ADDON_DIR / MANIFEST) -> dict:
    """The parsed extension manifest."""
    with path.open("rb") as fh:
        return tomllib.load(fh)


def download_wheels(cache: Path, targets: tuple[WheelTarget, ...] = WHEEL_TARGETS) -> None:
    """Fetch the pinned pyzmq wheels for every target into `cache` (pip skips files already there)."""
    cache.mkdir(parents=True, exist_ok=True)
    for target in targets:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--only-binary=:all:",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(cache),
            "--platform",
            target.platform,
            "--python-version",
            target.python_version,
            "--implementation",
            "cp",
            *(arg for abi in target.abis for arg in ("--abi", abi)),
            f"pyzmq=={PYZMQ_VERSION}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(
                f"could not download pyzmq=={PYZMQ_VERSION} for {target.platform} / Python {target.python_version} "
                f"from PyPI (are you offline?). Either connect to the internet or copy the wheels named in "
                f"{ADDON_DIR / MANIFEST} into {cache}. pip said:\n{proc.stderr.strip()}"
            )


def manifest_wheels(manifest: dict) -> list[str]:
    """File names of the wheels the manifest lists (all under ./wheels/)."""
    out = []
    for entry in manifest.get("wheels", []):
        if not entry.startswith("./wheels/"):
            raise BuildError(f"manifest wheel path {entry!r} must start with ./wheels/")
        out.append(entry.removeprefix("./wheels/"))
    return out


def _source_files(folder: Path) -> list[Path]:
    """Files under `folder` that belong in the package (no caches or bytecode)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not EXCLUDED_PARTS.intersection(p.parts) and p.suffix not in EXCLUDED_SUFFIXES
    )


def build(
    out_dir: Path = ROOT / "dist", cache: Path = ROOT / "build" / "wheel_cache", with_wheels: bool = True
) -> Path:
    """Write `vidrig-<version>.zip` into `out_dir` and return its path."""
    manifest = read_manifest()
    wheels = manifest_wheels(manifest)
    if with_wheels:
        missing = [w for w in wheels if not (cache / w).is_file()]
        if missing:
            download_wheels(cache)
        missing = [w for w in wheels if not (cache / w).is_file()]
        if missing:
            got = sorted(p.name for p in cache.glob("*.whl"))
            raise BuildError(f"wheels listed in the manifest were not downloaded: {missing}; the cache holds {got}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"vidrig-{manifest['version']}.zip"
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for src in _source_files(ADDON_DIR):
            rel = src.relative_to(ADDON_DIR).as_posix()
            if rel == MANIFEST and not with_wheels:
                zf.writestr(rel, _manifest_without_wheels(src.read_text("utf-8")))
            else:
                zf.write(src, rel)
        for src in _source_files(PROTOCOL_DIR):
            if src.suffix == ".py":
                zf.write(src, "protocol/" + src.relative_to(PROTOCOL_DIR).as_posix())
        if with_wheels:
            for name in wheels:
                zf.write(cache / name, "wheels/" + name)
    tmp.replace(path)
    validate_zip(path, expect_wheels=with_wheels)
    return path


def _manifest_without_wheels(text: str) -> str:
    """The manifest text with its `wheels = [...]` table removed (for a build that relies on an installed pyzmq)."""
    lines = text.splitlines()
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("wheels = ["):
            skipping = True
        if not skipping:
            out.append(line)
        if skipping and line.strip() == "]":
            skipping = False
    return "\n".join(out) + "\n"


def validate_zip(path: Path, expect_wheels: bool = True) -> dict:
    """Check the built zip's layout and manifest; returns the manifest or raises BuildError naming the fault."""
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            raise BuildError(f"{path}: {MANIFEST} is not at the zip root")
        manifest = tomllib.loads(zf.read(MANIFEST).decode("utf-8"))
        for key in ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "license"):
            if key not in manifest:
                raise BuildError(f"{path}: manifest lacks {key!r}")
        if manifest["schema_version"] != "1.0.0" or manifest["id"] != "vidrig" or manifest["type"] != "add-on":
            raise BuildError(f"{path}: manifest must be schema 1.0.0, id 'vidrig', type 'add-on'")
        if tuple(int(x) for x in manifest["blender_version_min"].split(".")) > (4, 2, 0):
            raise BuildError(f"{path}: blender_version_min must allow Blender 4.2")
        if len(manifest["tagline"]) > 64 or manifest["tagline"].endswith("."):
            raise BuildError(f"{path}: tagline must be at most 64 characters without a final full stop")
        permissions = manifest.get("permissions", {})
        for perm in ("network", "files"):
            reason = permissions.get(perm, "")
            if not reason or reason.endswith(".") or len(reason) > 64:
                raise BuildError(f"{path}: permission {perm!r} needs a reason (under 64 characters, no full stop)")
        required = {"__init__.py", "protocol/__init__.py", "protocol/client.py", "protocol/result.py"}
        if not required <= names:
            raise BuildError(f"{path}: missing {sorted(required - names)}")
        if not any(n.startswith("retarget_maps/") and n.endswith(".json") for n in names):
            raise BuildError(f"{path}: no bone-map presets under retarget_maps/")
        if any("__pycache__" in n or n.endswith(".pyc") for n in names):
            raise BuildError(f"{path}: contains bytecode caches")
        wheels = [w.removeprefix("./") for w in manifest.get("wheels", [])]
        if expect_wheels:
            if not wheels:
                raise BuildError(f"{path}: manifest lists no wheels")
            absent = [w for w in wheels if w not in names]
            if absent:
                raise BuildError(f"{path}: manifest lists wheels absent from the zip: {absent}")
            for tag in ("manylinux", "macosx", "win_amd64"):
                for abi in ("cp311-cp311", "abi3"):
                    if not any(tag in w and abi in w for w in wheels):
                        raise BuildError(f"{path}: no pyzmq wheel for {tag} / {abi}")
    return manifest


def install_into_blender(zip_path: Path, repo_dir: Path, repo_module: str = "vidrig_dev") -> str:
    """Install and enable the built zip in the running Blender (bpy) from a fresh local repository; returns the module.

    Run Blender with BLENDER_USER_RESOURCES pointing at a scratch folder so the bundled wheels land there.
    """
    import bpy  # only inside Blender or the bpy module

    repos = bpy.context.preferences.extensions.repos
    if not any(r.module == repo_module for r in repos):
        repos.new(name=repo_module, module=repo_module, custom_directory=str(repo_dir), source="USER")
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo=repo_module, enable_on_install=True)
    module = f"bl_ext.{repo_module}.vidrig"
    if result != {"FINISHED"} or module not in bpy.context.preferences.addons:
        raise BuildError(f"installing {zip_path} into Blender failed ({result})")
    return module


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: build, print the zip's path, or print why not and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip (default dist/)")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "wheel_cache", help="pyzmq wheel cache")
    parser.add_argument("--no-wheels", action="store_true", help="omit the wheels (for a Blender with pyzmq)")
    args = parser.parse_args(argv)
    try:
        path = build(args.out, args.cache, with_wheels=not args.no_wheels)
    except BuildError as exc:
        print(f"build_addon: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
