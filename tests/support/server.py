"""Start `python -m backend.cli serve` as a real subprocess on a free loopback port, wait for it, stop or kill it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from protocol.client import BackendUnavailable, Client

REPO = Path(__file__).resolve().parents[2]
TEST_PLUGIN = "tests.support.methods"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test server: the repo importable and the test method loaded (other plugins kept)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    plugins = [p for p in env.get("VIDRIG_PLUGINS", "").split(",") if p and p != TEST_PLUGIN]
    env["VIDRIG_PLUGINS"] = ",".join([TEST_PLUGIN, *plugins])
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def write_test_clip(path: Path, n_frames: int = 24, width: int = 64, height: int = 48, fps: int = 24) -> Path:
    """Encode a small deterministic MPEG-4 clip (a moving gradient) for jobs that only need decodable frames."""
    import av  # the backend's video package; imported here so the rest of this module needs only pyzmq

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ys, xs = np.mgrid[0:height, 0:width]
        for i in range(n_frames):
            image = np.stack([(xs * 4 + i * 8) % 256, (ys * 4) % 256, np.full_like(xs, (i * 16) % 256)], axis=-1)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass
class ServerProcess:
    """A running `vidrig serve` subprocess, its endpoint, state folder and log file."""

    state_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    bind_host: str | None = None  # address to bind when it differs from the one clients dial (e.g. 0.0.0.0)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        """The tcp:// endpoint clients connect to."""
        return f"tcp://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """The exact command line that starts the server."""
        return [
            sys.executable,
            "-m",
            "backend.cli",
            "serve",
            "--bind",
            f"tcp://{self.bind_host or self.host}:{self.port}",
            "--cache",
            str(self.state_dir),
            *self.args,
        ]

    def start(self, wait: float = 120.0, keys_dir: Path | None = None) -> ServerProcess:
        """Launch the process in its own process group and wait until `hello` answers."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.state_dir / f"server-{self.port}-{int(time.time() * 1000)}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child owns the file for its whole life
        self.proc = subprocess.Popen(
            self.command(),
            cwd=REPO,
            env=server_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self.wait_ready(wait, keys_dir)
        except BaseException:
            self.kill()  # never leave a half-started server behind
            raise
        return self

    def wait_ready(self, wait: float, keys_dir: Path | None = None) -> None:
        """Poll `hello` until the server answers with its worker ready; fail with its log if it exits or never does."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"vidrig serve exited with {self.proc.returncode}:\n{self.log()}")
            with Client(self.endpoint, keys_dir=keys_dir, timeout=1.0) as client:
                try:
                    welcome = client.hello()
                except BackendUnavailable:
                    continue
            if welcome.device != "starting":
                return
            time.sleep(0.1)
        raise RuntimeError(f"vidrig serve did not answer hello within {wait:.0f} s:\n{self.log()}")

    def client(self, timeout: float = 10.0, **kwargs: object) -> Client:
        """A new Client connected to this server."""
        return Client(self.endpoint, timeout=timeout, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code (kills the group if it hangs)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._kill_group()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """kill -9 the server and everything it started (its worker), as a crash or power loss would."""
        if self.proc is None:
            return
        self._kill_group()
        self.proc.wait(10)

    def _kill_group(self) -> None:
        """SIGKILL whatever is left of the server's process group (nothing after a clean stop)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
