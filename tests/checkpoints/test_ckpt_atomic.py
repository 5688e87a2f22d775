"""Readers never see a partial checkpoint: failed saves leave nothing, killed writers leave no torn file."""

from __future__ import annotations

import hashlib
import os
import posixpath
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from poptrain.checkpoints import CheckpointRef, CheckpointStore
from poptrain.errors import UnsafeStateError


def _all_files(store: CheckpointStore) -> list[str]:
    root = store.fs._strip_protocol(store.url)
    store.fs.invalidate_cache()
    return list(store.fs.find(root)) if store.fs.exists(root) else []


def test_a_save_that_fails_mid_serialisation_leaves_no_file(store: CheckpointStore) -> None:
    ok = store.save({"a": 1}, experiment="exp", member=0, step=1)
    before = _all_files(store)
    state = {"weights": np.zeros(1_000_000), "later": {"callback": lambda: None}}
    with pytest.raises(UnsafeStateError, match=r"state\['later'\]\['callback'\]"):
        store.save(state, experiment="exp", member=0, step=2)
    assert _all_files(store) == before and store.keys("exp") == [ok.key]


@pytest.mark.parametrize("kind", ["local", "memory", "s3"])
def test_concurrent_reader_only_ever_sees_whole_checkpoints(store_of: Any, kind: str) -> None:
    store = store_of(kind)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: set[str] = set()

    def reader() -> None:
        while not stop.is_set():
            for key in store.keys("exp"):
                data = store.fs.cat_file(f"{store.url}/{key}")
                sha = hashlib.sha256(data).hexdigest()
                if not key.endswith(f"-{sha[:12]}.ckpt"):
                    errors.append(AssertionError(f"{key} holds {len(data)} bytes hashing to {sha[:12]}"))
                seen.add(key)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        refs = [store.save({"w": np.full(300_000, float(i))}, experiment="exp", member=0, step=i) for i in range(8)]
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[0]
    assert seen and all(store.verify(r) for r in refs)


WRITER = """
import sys
import numpy as np
from poptrain.checkpoints import CheckpointStore
store = CheckpointStore(sys.argv[1])
for step in range(10_000):
    store.save({"w": np.full(4_000_000, float(step))}, experiment="exp", member=0, step=step)
    print(step, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_writer_killed_mid_write_leaves_only_whole_checkpoints(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path / "ckpts"))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, store.url], stdout=subprocess.PIPE, text=True)
    folder = tmp_path / "ckpts" / "exp" / "member-0000"
    try:
        # Let it finish a couple of 32 MB saves, then kill it the moment a later
        # one has its temp file open, i.e. in the middle of writing.
        for _ in range(2):
            assert proc.stdout is not None and proc.stdout.readline()
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".tmp") for p in folder.iterdir()) and time.monotonic() < deadline:
            pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    keys = store.keys("exp")
    assert len(keys) >= 2
    for key in keys:
        data = store.fs.cat_file(f"{store.url}/{key}")
        sha = hashlib.sha256(data).hexdigest()
        assert key.endswith(f"-{sha[:12]}.ckpt"), f"{key} is torn"
        state = store.load(CheckpointRef(key, sha, len(data)))
        assert state["w"][-1] == int(posixpath.basename(key).split("-")[1])
    # Whatever the writer left half-written is a temp file: invisible, and too young to collect.
    leftovers = [p for p in _all_files(store) if not p.endswith(".ckpt")]
    assert all(posixpath.basename(p).startswith(".") and p.endswith(".tmp") for p in leftovers)
    assert store.collect_garbage("exp", keep=keys) == []
