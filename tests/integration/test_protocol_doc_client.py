"""A minimal client written from docs/protocol.md alone (raw pyzmq + json + struct + numpy, no `protocol` import).

It runs hello, ping, submit (progress, result), status, result, refine, cancel and a version error against the
real server, decoding every frame by the rules the document gives.
"""

from __future__ import annotations

import json
import secrets
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

# docs/protocol.md, "Arrays": dtype names and their little-endian numpy forms.
DTYPES = {
    "bool": "|b1",
    "uint8": "|u1",
    "int8": "|i1",
    "uint16": "<u2",
    "int16": "<i2",
    "uint32": "<u4",
    "int32": "<i4",
    "uint64": "<u8",
    "int64": "<i8",
    "float16": "<f2",
    "float32": "<f4",
    "float64": "<f8",
}


class DocClient:
    """One DEALER socket; requests are matched to replies by `re`, pushes are kept in arrival order."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.inbox: list[tuple[dict, dict[str, np.ndarray]]] = []

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()

    def send(self, header: dict, arrays: dict[str, tuple[str, list[int], bytes]] | None = None) -> str:
        """Frame 0: JSON header with v, type, id, re, arrays table; frames 1..n: the raw array bytes."""
        rid = secrets.token_hex(16)
        table = [{"name": n, "dtype": d, "shape": s} for n, (d, s, _) in (arrays or {}).items()]
        full = {**header, "v": 1, "id": rid, "re": "", "arrays": table}
        self.sock.send_multipart([json.dumps(full).encode("utf-8"), *(b for _, _, b in (arrays or {}).values())])
        return rid

    def _read(self, timeout: float) -> tuple[dict, dict[str, np.ndarray]]:
        assert self.sock.poll(int(timeout * 1000)), "no message from the server"
        frames = self.sock.recv_multipart()
        header = json.loads(frames[0].decode("utf-8"))
        assert header["v"] == 1 and isinstance(header["type"], str)
        assert len(header["arrays"]) == len(frames) - 1
        arrays = {}
        for spec, buf in zip(header["arrays"], frames[1:], strict=True):
            dtype = np.dtype(DTYPES[spec["dtype"]])
            assert len(buf) == int(np.prod(spec["shape"], dtype=np.int64)) * dtype.itemsize
            arrays[spec["name"]] = np.frombuffer(buf, dtype).reshape(spec["shape"])
        return header, arrays

    def reply(self, rid: str, timeout: float = 30.0) -> tuple[dict, dict[str, np.ndarray]]:
        """The reply whose `re` is `rid`; other messages go to the inbox."""
        deadline = time.monotonic() + timeout
        while True:
            header, arrays = self._read(max(deadline - time.monotonic(), 0.001))
            if header["re"] == rid:
                return header, arrays
            self.inbox.append((header, arrays))

    def until_final(self, job: str, timeout: float = 120.0) -> tuple[list[dict], tuple[dict, dict[str, np.ndarray]]]:
        """Pushed messages about `job` up to its one final message (result, error or cancelled)."""
        deadline = time.monotonic() + timeout
        seen: list[dict] = []
        while True:
            if self.inbox:
                header, arrays = self.inbox.pop(0)
            else:
                header, arrays = self._read(max(deadline - time.monotonic(), 0.001))
            if header.get("job") != job:
                continue
            if header["type"] in ("result", "error", "cancelled"):
                return seen, (header, arrays)
            seen.append(header)


@pytest.fixture
def doc_client(server: ServerProcess) -> Iterator[DocClient]:
    client = DocClient(server.endpoint)
    yield client
    client.close()


def test_handshake_ping_and_version_error(doc_client: DocClient) -> None:
    rid = doc_client.send({"type": "hello", "client": "doc-client", "versions": [1]})
    welcome, arrays = doc_client.reply(rid)
    assert welcome["type"] == "welcome" and welcome["version"] == 1 and arrays == {}
    assert "testcount" in [m["name"] for m in welcome["methods"]]
    assert isinstance(welcome["max_message_bytes"], int) and welcome["device"] != "starting"

    rid = doc_client.send({"type": "ping"})
    pong, _ = doc_client.reply(rid)
    assert pong["type"] == "pong"

    raw = json.dumps({"v": 2, "type": "ping", "id": "old-client"}).encode()
    doc_client.sock.send_multipart([raw])
    error, _ = doc_client.reply("old-client")
    assert (error["type"], error["code"], error["details"]) == ("error", "E_VERSION", {"supported": [1]})


def test_job_lifecycle(doc_client: DocClient, test_clip: Path) -> None:
    rid = doc_client.send(
        {
            "type": "submit",
            "video": str(test_clip),
            "method": "testcount",
            "frames": [2, 8],
            "settings": {"salt": "doc"},
        }
    )
    accepted, _ = doc_client.reply(rid)
    assert accepted["type"] == "accepted" and isinstance(accepted["position"], int)
    job = accepted["job"]
    pushes, (final, arrays) = doc_client.until_final(job)
    assert pushes and all(p["type"] == "progress" and p["re"] == "" for p in pushes)
    assert pushes[0]["state"] == "running" and all(0 <= p["fraction"] <= 1 for p in pushes)
    assert final["type"] == "result" and final["re"] == ""
    meta = final["info"]["meta"]
    assert meta["method"] == "testcount" and meta["frame_indices"] == [2, 3, 4, 5, 6, 7]
    poses, trans = arrays["poses"], arrays["trans"]
    assert poses.dtype == np.dtype("<f4") and poses.shape == (6, 165) and not poses.any()
    np.testing.assert_array_equal(trans[:, 0], np.arange(6, dtype=np.float32))
    assert arrays["betas"].shape == (10,) and arrays["vidrig_transl_c"].shape == (6, 3)

    rid = doc_client.send({"type": "status", "job": job})
    status, _ = doc_client.reply(rid)
    assert (status["type"], status["state"], status["fraction"]) == ("progress", "done", 1.0)

    rid = doc_client.send({"type": "result", "job": job})
    again, again_arrays = doc_client.reply(rid)
    assert again["type"] == "result" and again["info"] == final["info"]
    assert sorted(again_arrays) == sorted(arrays)
    assert all(again_arrays[k].tobytes() == arrays[k].tobytes() for k in arrays)

    pin_frames = ("int64", [1], struct.pack("<q", 4))
    pin_poses = ("float32", [1, 55, 3], struct.pack("<165f", *([0.1] * 165)))
    rid = doc_client.send(
        {"type": "refine", "job": job, "settings": {"method.salt": "doc-refined"}},
        {"pin_frames": pin_frames, "pin_poses": pin_poses},
    )
    refined, _ = doc_client.reply(rid)
    assert refined["type"] == "accepted" and refined["job"] != job
    _, (final, arrays) = doc_client.until_final(refined["job"])
    assert final["type"] == "result" and final["info"]["meta"]["settings"]["method"]["salt"] == "doc-refined"
    assert arrays["poses"].shape == (6, 165)


def test_cancel_and_errors(doc_client: DocClient, test_clip: Path, tmp_path: Path) -> None:
    gate = str(tmp_path / "closed")
    rid = doc_client.send(
        {
            "type": "submit",
            "video": str(test_clip),
            "method": "testcount",
            "settings": {"gate": gate, "salt": "doc-cancel"},
        }
    )
    job = doc_client.reply(rid)[0]["job"]
    cid = doc_client.send({"type": "cancel", "job": job})
    _, (final, _) = doc_client.until_final(job)
    assert final["type"] == "cancelled" and final["re"] == cid

    rid = doc_client.send({"type": "result", "job": job})
    error, _ = doc_client.reply(rid)
    assert (error["type"], error["code"], error["job"]) == ("error", "E_CANCELLED", job)

    rid = doc_client.send({"type": "submit", "video": str(test_clip), "method": "testcount", "settings": {"dealy": 1}})
    error, _ = doc_client.reply(rid)
    assert error["code"] == "E_BAD_REQUEST" and error["details"]["key"] == "dealy"
    assert "delay" in error["details"]["accepted"]

    table = [{"name": "x", "dtype": "float32", "shape": [4]}]
    doc_client.sock.send_multipart(
        [json.dumps({"v": 1, "type": "ping", "id": "short", "arrays": table}).encode(), b"\0" * 15]
    )
    error, _ = doc_client.reply("short")
    assert error["code"] == "E_BAD_REQUEST"
