"""Takeover of a member whose worker went silent, and what the silent worker may still do afterwards."""

from __future__ import annotations

import threading
import time


import poptrain as pt
from poptrain.checkpoints import CheckpointRef, CheckpointStore
from poptrain.executors.job import WorkerJob
from poptrain.storage import Storage

import scale_trainables as T

_gate = threading.Event()


class Gated(T.Walker):
    """Blocks the first step trained on the thread named ``silent`` until the test opens the gate."""

    def step(self) -> dict:
        if threading.current_thread().name == "silent":
            _gate.wait(30)
        return super().step()


def test_silent_worker_back_after_takeover_leaves_the_new_owners_checkpoint(storage_url, tmp_path):
    """Training is deterministic, so the silent worker saves the very checkpoint (same key) that
    the worker which took over committed; dropping its own refused interval must not delete it."""
    _gate.clear()
    exp = T.walker_experiment("takeover", trainable=Gated, population=2, budget=4, interval=4)
    pt.run(exp, storage=storage_url, checkpoints=str(tmp_path / "ck"), workers=0)
    st = Storage(storage_url)
    record = st.get_experiment("takeover")
    job = WorkerJob(storage_url=storage_url, checkpoints_url=record.spec["checkpoints"], experiment_id=record.id,
                    spec=record.spec, lease_s=0.6, experiment=exp)

    silent = job.make_worker()
    silent.storage.heartbeat = lambda lease, **kw: True  # its heartbeats stop reaching the database
    thread = threading.Thread(target=silent.run, name="silent")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not any(m.lease_owner == silent.name for m in st.members(record.id)):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(1.0)  # past the lease
        job.make_worker().run()  # takes the silent worker's member over and finishes the experiment
        assert st.is_finished(record.id)
    finally:
        _gate.set()
        thread.join(30)
    assert silent.stats.lost_leases == 1 and silent.stats.intervals == 0
    time.sleep(0.2)  # the silent worker's deleter thread has had its chance
    store = CheckpointStore(record.spec["checkpoints"])
    for m in st.members(record.id):
        assert m.state == "done"
        ref = CheckpointRef(m.checkpoint.key, m.checkpoint.sha256, m.checkpoint.size)
        assert store.verify(ref), f"member {m.member_id}'s recorded checkpoint {ref.key} is gone"
    st.close()
