"""20 clients at once, each in its own thread with its own Client, submitting and cancelling jobs.

Every job must end exactly once (one result, cancelled or error message), every request must get exactly one
reply, and nothing may reach a client that did not ask for it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol import messages as m
from tests.conftest import CLIP_FRAMES
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow
CLIENTS = 20


@dataclass
class Outcome:
    """What one client thread sent and saw."""

    frames: dict[str, int] = field(default_factory=dict)  # job -> frames it asked for
    requests: set[str] = field(default_factory=set)  # ids of every request sent
    cancels: dict[str, str] = field(default_factory=dict)  # cancel request id -> job
    finals: list[m.Message] = field(default_factory=list)  # unsolicited job endings (re == "")
    replies: Counter = field(default_factory=Counter)  # request id -> replies seen
    cancel_replies: dict[str, m.Message] = field(default_factory=dict)  # cancel request id -> its reply
    strangers: list[m.Message] = field(default_factory=list)  # anything not about this client's jobs or requests
    error: BaseException | None = None


def _run_client(server: ServerProcess, clip: Path, gate: Path, index: int, out: Outcome) -> None:
    """Submit a counting job and a gated job, cancel the gated one (and every other client's first one too)."""
    try:
        with server.client(timeout=60) as client:
            n = 1 + index % CLIP_FRAMES
            jobs = []
            for settings, frames in (
                ({"salt": f"c{index}", "delay": 0.002}, (0, n)),
                ({"salt": f"g{index}", "gate": str(gate)}, (0, 2)),
            ):
                submit = m.Submit(video=str(clip), method="testcount", settings=settings, frames=list(frames))
                accepted = client.request(submit)
                out.requests.add(submit.id)
                out.replies[submit.id] += 1
                assert isinstance(accepted, m.Accepted)
                out.frames[accepted.job] = frames[1] - frames[0]
                jobs.append(accepted.job)
            targets = jobs if index % 2 == 0 else jobs[1:]
            for job in targets:
                rid = client.cancel(job)
                out.requests.add(rid)
                out.cancels[rid] = job
            deadline = time.monotonic() + 150
            quiet_until: float | None = None
            while time.monotonic() < deadline:
                msg = client.recv(0.2)
                if msg is None:
                    if quiet_until is not None and time.monotonic() > quiet_until:
                        return
                    continue
                _classify(msg, out)
                ended = {getattr(f, "job", None) for f in out.finals}
                if quiet_until is None and ended >= set(out.frames) and all(out.replies[r] for r in out.requests):
                    quiet_until = time.monotonic() + 1.0  # keep listening: a duplicate would arrive now
            raise AssertionError(f"client {index} did not see all its jobs end")
    except BaseException as exc:
        out.error = exc


def _classify(msg: m.Message, out: Outcome) -> None:
    """File a message as a reply to one of our requests, an unsolicited job ending, progress, or a stranger."""
    job = getattr(msg, "job", None)
    if msg.re:
        if msg.re not in out.requests:
            out.strangers.append(msg)
            return
        out.replies[msg.re] += 1
        if msg.re in out.cancels:
            out.cancel_replies[msg.re] = msg
        if isinstance(msg, m.CancelledMessage):
            out.finals.append(msg)  # the owner's ending and the cancel's reply are one message
        return
    if job not in out.frames:
        out.strangers.append(msg)
    elif isinstance(msg, m.ResultMessage | m.CancelledMessage | m.Error):
        out.finals.append(msg)


def test_twenty_clients_submitting_and_cancelling(server: ServerProcess, test_clip: Path, tmp_path: Path) -> None:
    gate = tmp_path / "closed-gate"  # never opened: gated jobs end only by being cancelled
    outcomes = [Outcome() for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=_run_client, args=(server, test_clip, gate, i, outcomes[i]), daemon=True)
        for i in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(200)
    assert not any(t.is_alive() for t in threads)
    all_jobs: set[str] = set()
    results = cancelled = 0
    for index, out in enumerate(outcomes):
        assert out.error is None, f"client {index}: {out.error!r}"
        assert not out.strangers, f"client {index} received messages meant for others: {out.strangers}"
        assert not set(out.frames) & all_jobs, "job ids must be unique across clients"
        all_jobs |= set(out.frames)
        endings = Counter(f.job for f in out.finals)  # type: ignore[attr-defined]
        assert endings == dict.fromkeys(out.frames, 1), f"client {index}: endings {endings}"
        assert all(out.replies[r] == 1 for r in out.requests), f"client {index}: replies {out.replies}"
        gated = list(out.frames)[1]
        for final in out.finals:
            if isinstance(final, m.ResultMessage):
                results += 1
                assert final.job != gated
                assert final.result is not None and final.result.smplx is not None
                assert final.result.smplx.num_frames == out.frames[final.job]
                assert final.result.meta.frame_indices == list(range(out.frames[final.job]))
                assert final.result.meta.settings["method"]["salt"] == f"c{index}"
            else:
                assert isinstance(final, m.CancelledMessage), f"client {index}: {final}"
                cancelled += 1
        final_of = {f.job: f for f in out.finals}  # type: ignore[attr-defined]
        for rid, job in out.cancels.items():
            reply = out.cancel_replies[rid]
            if isinstance(reply, m.CancelledMessage):
                assert reply.job == job and final_of[job] is reply
            else:  # the job finished before the cancel took effect
                assert isinstance(reply, m.Error) and reply.code == "E_BAD_REQUEST", reply
                assert isinstance(final_of[job], m.ResultMessage)
        assert any(isinstance(f, m.CancelledMessage) and f.job == gated for f in out.finals)
    assert len(all_jobs) == 2 * CLIENTS
    assert results >= CLIENTS // 2 and cancelled >= CLIENTS
    assert results + cancelled == 2 * CLIENTS
