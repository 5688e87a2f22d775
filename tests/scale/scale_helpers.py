"""Worker processes we can kill, and the invariant checks read back from storage afterwards."""

from __future__ import annotations

import collections
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poptrain.checkpoints import CheckpointRef, CheckpointStore
from poptrain.executors.job import WorkerJob
from poptrain.storage import Storage, schema

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

_FORK = mp.get_context("fork")


# -- worker processes ----------------------------------------------------------
def start_worker(job: WorkerJob, log_dir: Path) -> Any:
    """A forked worker process that logs every claim and checkpoint load to ``log_dir/<pid>.jsonl``."""
    p = _FORK.Process(target=_worker_main, args=(job, str(log_dir)), daemon=True)
    p.start()
    return p


def _worker_main(job: WorkerJob, log_dir: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 0
    try:
        worker = job.make_worker()
        _log_io(worker, os.path.join(log_dir, f"{os.getpid()}.jsonl"))
        worker.run()
    except BaseException:  # noqa: BLE001 - the test reads the exit code
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    os._exit(code)


def _log_io(worker: Any, path: str) -> None:
    """Record what the worker claimed and which checkpoints it loaded, through the public objects it uses."""

    def write(entry: dict[str, Any]) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)

    claim, finish, load = worker.storage.claim, worker.storage.finish_interval, worker.checkpoints.load

    def log_lease(lease: Any) -> None:
        if lease is not None:
            m = lease.member
            write(dict(kind="claim", member=m.member_id, segment=m.segment_id, step=m.step,
                       key=m.checkpoint.key if m.checkpoint else None))

    def logged_claim(*a: Any, **kw: Any) -> Any:
        lease = claim(*a, **kw)
        log_lease(lease)
        return lease

    def logged_finish(*a: Any, **kw: Any) -> Any:
        result = finish(*a, **kw)  # may claim the worker's next member in the same transaction
        log_lease(getattr(result, "next_lease", None))
        return result

    def logged_load(ref: CheckpointRef) -> Any:
        try:
            out = load(ref)
        except Exception as exc:
            write(dict(kind="load", key=ref.key, sha256=ref.sha256, ok=False, error=str(exc)))
            raise
        write(dict(kind="load", key=ref.key, sha256=ref.sha256, ok=True))
        return out

    worker.storage.claim = logged_claim
    worker.storage.finish_interval = logged_finish
    worker.checkpoints.load = logged_load


def read_logs(log_dir: Path) -> dict[int, list[dict[str, Any]]]:
    out = {}
    for f in Path(log_dir).glob("*.jsonl"):
        out[int(f.stem)] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def pid_of(worker: str) -> int:
    return int(worker.split(":")[1])


# -- invariants ------------------------------------------------------------------
def history_rows(st: Storage, exp_id: int) -> list[dict[str, Any]]:
    """History rows with their commit time (the database clock), which ``Storage.history`` leaves out."""
    H = schema.history
    with st.engine.connect() as conn:
        rows = conn.execute(sa.select(H).where(H.c.experiment_id == exp_id)).all()
    return [dict(member=r.member_id, segment=r.segment_id, step=r.step, metrics=r.metrics, at=r.created_at) for r in rows]


def check_budget_and_history(st: Storage, exp_id: int, budget: int) -> list[dict[str, Any]]:
    """Every member done at its budget; no (member, segment, step) twice; each segment's steps without gaps."""
    members = st.members(exp_id)
    assert members and all(m.state == "done" and m.step == budget for m in members), [
        (m.member_id, m.state, m.step, m.error) for m in members
    ]
    rows = history_rows(st, exp_id)
    seen = collections.Counter((h["member"], h["segment"], h["step"]) for h in rows)
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]
    by_seg = collections.defaultdict(list)
    for h in rows:
        by_seg[h["segment"]].append(h["step"])
    segs = {s["segment"]: s for s in st.segments(exp_id)}
    for seg, steps in by_seg.items():
        s = segs[seg]
        assert sorted(steps) == list(range(s["start_step"] + 1, s["end_step"] + 1)), f"gap in segment {seg}: {sorted(steps)} {s}"
    for m in members:  # the final segment of each member runs up to the budget
        assert segs[m.segment_id]["end_step"] == budget
    return rows


def leases_one_after_another(leases: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Each member's leases, in order; asserts that no two of them overlap ([claimed_at, released_at))."""
    by_member: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for le in leases:
        by_member[le["member_id"]].append(le)
    for member, ls in by_member.items():
        ls.sort(key=lambda le: (le["claimed_at"], le["id"]))
        for a, b in zip(ls, ls[1:]):
            assert a["released_at"] is not None, f"member {member}: lease {a['id']} never ended, yet {b['id']} was granted"
            assert a["released_at"] <= b["claimed_at"], f"member {member}: leases {a['id']} and {b['id']} overlap"
    return by_member


def check_leases(st: Storage, exp_id: int, rows: list[dict[str, Any]], *, interval: int) -> dict[str, int]:
    """No member was trained by two workers at once.

    The lease log must show, for each member, leases one after another
    ([claimed_at, released_at) never overlap), each ended. Then every history
    row is attributed to the lease that committed it: the row names the process
    that trained it (the trainable reports its pid) and carries the commit time
    from the database clock; exactly one lease of that member held by that
    process spans the commit time and was granted at the step before the row's
    interval, and if that lease was later taken over, the commit came strictly
    before the takeover.
    """
    leases = st.leases(exp_id)
    by_member = leases_one_after_another(leases)
    for member, ls in by_member.items():
        assert ls[-1]["released_at"] is not None, f"member {member}: lease {ls[-1]['id']} never ended"
    for h in rows:
        pid = int(h["metrics"]["pid"])
        holders = [
            le for le in by_member[h["member"]]
            if pid_of(le["worker"]) == pid and le["claimed_at"] <= h["at"] <= le["released_at"]
            and le["start_step"] < h["step"] <= le["start_step"] + interval
        ]
        assert len(holders) == 1, f"history row {h} has no single committing lease: {holders}"
        if holders[0]["outcome"] == "taken_over":
            assert h["at"] < holders[0]["released_at"], f"row {h} committed after its lease was taken over"
    outcomes = collections.Counter(le["outcome"] for le in leases)
    return dict(outcomes)


def check_exploits(st: Storage, exp_id: int, rows: list[dict[str, Any]], logs: dict[int, list[dict[str, Any]]]) -> int:
    """Every exploit copied a donor checkpoint that existed, verified, and holds the donor's state at donor_step.

    For each new segment an exploit started, some worker claimed the member
    on that segment with the donor's checkpoint key (named after the donor
    step), then loaded that key, which succeeds only when the file exists with
    the recorded sha256; and the first step the segment trained started from
    the donor's score at ``donor_step`` (the state of the copied weights).
    No load anywhere failed.
    """
    failed = [e for entries in logs.values() for e in entries if e["kind"] == "load" and not e["ok"]]
    assert not failed, failed
    segs = {s["segment"]: s for s in st.segments(exp_id)}
    by_key = {(h["segment"], h["step"]): h for h in rows}

    def score_at(seg_id: int, step: int) -> float:
        row = by_key.get((seg_id, step))
        if row is not None:
            return row["metrics"]["score"]
        seg = segs[seg_id]  # a segment that had not trained yet: its weights are its donor's
        assert seg["start_step"] == step and seg["parent"] is not None, (seg_id, step)
        return score_at(seg["parent"], step)

    exploits = [s for s in segs.values() if s["donor"] is not None]
    for s in exploits:
        assert s["member"] != s["donor"]
        assert s["start_step"] == s["donor_step"]
        verified = False
        for entries in logs.values():
            for i, e in enumerate(entries):
                if e["kind"] == "claim" and e["segment"] == s["segment"] and e["step"] == s["start_step"]:
                    assert e["key"] is not None and f"/step-{s['donor_step']:08d}-" in e["key"], (s, e)
                    loads = [x for x in entries[i + 1 :] if x["kind"] == "load"][:1]
                    verified |= bool(loads) and loads[0]["key"] == e["key"] and loads[0]["ok"]
        assert verified, f"exploit segment {s['segment']} was never restored from a verified donor checkpoint"
        first = by_key.get((s["segment"], s["start_step"] + 1))
        if first is not None:
            assert first["metrics"]["x_before"] == score_at(s["parent"], s["donor_step"]), s
    return len(exploits)


def check_checkpoints(st: Storage, exp_id: int, store: CheckpointStore) -> None:
    """Every checkpoint still recorded, and every member's latest one, exists and verifies."""
    refs = {r["key"]: CheckpointRef(r["key"], r["sha256"], r["size"]) for r in st.checkpoint_records(exp_id)}
    for m in st.members(exp_id):
        assert m.checkpoint is not None
        refs[m.checkpoint.key] = CheckpointRef(m.checkpoint.key, m.checkpoint.sha256, m.checkpoint.size)
    bad = [k for k, ref in refs.items() if not store.verify(ref)]
    assert not bad, bad


# -- the command line --------------------------------------------------------------
def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
    """``poptrain ARGS`` as a real process of this Python."""
    return subprocess.run(
        [sys.executable, "-m", "poptrain.cli.main", *args], capture_output=True, text=True, timeout=timeout,
        env=cli_env(env), cwd=kw.pop("cwd", None), **kw,
    )


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def no_secret(text: str, secret: str) -> bool:
    return secret not in text and re.sub(r"\s", "", secret) not in re.sub(r"\s", "", text)


# -- a network path to the database that the test can cut ------------------------------
class Proxy:
    """A TCP forwarder on 127.0.0.1 to ``port``: ``cut()`` drops every connection and refuses new ones
    (a database restart or a network cut, as a client sees it), ``restore()`` lets them through again."""

    def __init__(self, port: int) -> None:
        import socket
        import threading

        self._socket, self._threading = socket, threading
        self.target = port
        self._lock = threading.Lock()
        self._conns: list[Any] = []
        self._listener = None
        self.port = 0
        self.restore()

    def restore(self) -> None:
        s = self._socket.socket()
        s.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.port = s.getsockname()[1]
        self._listener = s
        self._threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            try:  # wakes the thread blocked in accept(), which frees the port at once
                listener.shutdown(self._socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for c in conns:
            try:
                c.shutdown(self._socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, listener: Any) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: Any, dst: Any) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
