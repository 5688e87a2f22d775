"""CheckpointStore conformance: the same tests on a local folder, memory:// and S3 (moto over loopback)."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from poptrain.checkpoints import CheckpointRef, CheckpointStore, dumps
from poptrain.checkpoints.store import TEMP_MAX_AGE_S
from poptrain.errors import CheckpointError, ConfigError

KEY_RE = re.compile(r"^exp/member-0003/step-00000120-[0-9a-f]{12}\.ckpt$")


def _state(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"w": rng.normal(size=(16, 8)).astype(np.float32), "step": 120, "cfg": {"lr": 0.01, 0: (1, 2)}}


def _raw(store: CheckpointStore, key: str) -> str:
    return f"{store.url}/{key}"


def test_save_returns_a_ref_that_describes_the_bytes(store: CheckpointStore) -> None:
    ref = store.save(_state(), experiment="exp", member=3, step=120)
    assert KEY_RE.match(ref.key)
    data = store.fs.cat_file(_raw(store, ref.key))
    assert ref.sha256 == hashlib.sha256(data).hexdigest() == hashlib.sha256(dumps(_state())).hexdigest()
    assert ref.size == len(data)
    assert ref.key.endswith(f"-{ref.sha256[:12]}.ckpt")


def test_load_round_trips(store: CheckpointStore) -> None:
    ref = store.save(_state(), experiment="exp", member=3, step=120)
    back = store.load(ref)
    assert np.array_equal(back["w"], _state()["w"]) and back["cfg"] == {"lr": 0.01, 0: (1, 2)}
    assert store.verify(ref)


def test_identical_states_give_identical_refs_and_resaving_is_harmless(store: CheckpointStore) -> None:
    a = store.save(_state(), experiment="exp", member=0, step=5)
    b = store.save(_state(), experiment="exp", member=0, step=5)
    assert a == b and store.keys("exp") == [a.key]
    assert store.save(_state(1), experiment="exp", member=0, step=5).sha256 != a.sha256


def test_tampered_checkpoint_is_refused(store: CheckpointStore) -> None:
    ref = store.save(_state(), experiment="exp", member=3, step=120)
    data = bytearray(store.fs.cat_file(_raw(store, ref.key)))
    data[len(data) // 2] ^= 0x01
    store.fs.pipe_file(_raw(store, ref.key), bytes(data))
    assert not store.verify(ref)
    got = hashlib.sha256(bytes(data)).hexdigest()
    expected_message = f"checkpoint {ref.key}: sha256 mismatch (expected {ref.sha256}, got {got}); refusing to load"
    with pytest.raises(CheckpointError) as info:
        store.load(ref)
    assert str(info.value) == expected_message


def test_a_ref_with_the_wrong_size_does_not_verify(store: CheckpointStore) -> None:
    ref = store.save(_state(), experiment="exp", member=0, step=1)
    assert not store.verify(CheckpointRef(ref.key, ref.sha256, ref.size + 1))


def test_missing_checkpoint_is_named(store: CheckpointStore) -> None:
    ref = CheckpointRef("exp/member-0000/step-00000001-000000000000.ckpt", "0" * 64, 10)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {ref.key}: not found")):
        store.load(ref)
    assert not store.verify(ref)
    store.delete(ref.key)  # missing is fine


def test_delete(store: CheckpointStore) -> None:
    ref = store.save(_state(), experiment="exp", member=0, step=1)
    store.delete(ref.key)
    assert store.keys("exp") == [] and not store.verify(ref)


def test_keys_lists_one_experiment_sorted(store: CheckpointStore) -> None:
    refs = [store.save({"i": i}, experiment="exp", member=i % 2, step=i) for i in range(4)]
    store.save({"other": 1}, experiment="exp2", member=0, step=0)
    assert store.keys("exp") == sorted(r.key for r in refs)
    assert len(store.keys("exp2")) == 1 and store.keys("never") == []


def test_gc_keeps_what_is_asked_and_nothing_else(store: CheckpointStore) -> None:
    refs = [store.save({"i": i}, experiment="exp", member=m, step=i) for m in range(2) for i in range(3)]
    other = store.save({"x": 1}, experiment="exp2", member=0, step=0)
    keep = {refs[2].key, refs[5].key, "exp2/not-ours.ckpt"}
    deleted = store.collect_garbage("exp", keep=keep)
    assert deleted == sorted(r.key for r in refs if r.key not in keep)
    assert store.keys("exp") == sorted([refs[2].key, refs[5].key])
    assert store.verify(refs[2]) and store.verify(refs[5]) and store.verify(other)
    assert store.collect_garbage("exp", keep=keep) == []


def test_gc_grace_period_spares_checkpoints_not_yet_recorded(store: CheckpointStore) -> None:
    ref = store.save({"new": 1}, experiment="exp", member=0, step=1)
    assert store.collect_garbage("exp", keep=[], grace_s=600) == []
    assert store.collect_garbage("exp", keep=[]) == [ref.key]


def test_gc_leaves_young_temp_files_and_keys_ignore_them(store: CheckpointStore) -> None:
    ref = store.save({"a": 1}, experiment="exp", member=0, step=1)
    tmp_key = "exp/member-0000/.step-00000002-abc.ckpt.0123abcd.tmp"
    store.fs.pipe_file(_raw(store, tmp_key), b"half a checkpoint")
    assert store.keys("exp") == [ref.key]
    assert store.collect_garbage("exp", keep=[ref.key]) == []
    assert store.fs.exists(_raw(store, tmp_key))


def test_gc_deletes_temp_files_of_writers_dead_for_over_an_hour(store_of: Any) -> None:
    store = store_of("local")  # only a local folder lets a test backdate a file
    store.save({"a": 1}, experiment="exp", member=0, step=1)
    folder = Path(store.fs._strip_protocol(store.url)) / "exp" / "member-0000"
    old, young = folder / ".step-1.ckpt.aa.tmp", folder / ".step-2.ckpt.bb.tmp"
    old.write_bytes(b"x")
    young.write_bytes(b"x")
    past = time.time() - TEMP_MAX_AGE_S - 60
    os.utime(old, (past, past))
    assert store.collect_garbage("exp", keep=store.keys("exp")) == ["exp/member-0000/.step-1.ckpt.aa.tmp"]
    assert not old.exists() and young.exists()


def test_gc_refuses_a_single_string_as_keep(store: CheckpointStore) -> None:
    with pytest.raises(ConfigError, match="'keep'"):
        store.collect_garbage("exp", keep="exp/member-0000/step-00000001-abc.ckpt")


@pytest.mark.parametrize("experiment", ["", "a/b", "..", ".", "a\\b", 3])
def test_bad_experiment_names_are_refused(store: CheckpointStore, experiment: Any) -> None:
    with pytest.raises(ConfigError, match="'experiment'"):
        store.save({}, experiment=experiment, member=0, step=0)
    with pytest.raises(ConfigError):
        store.keys(experiment)


@pytest.mark.parametrize(("member", "step"), [(-1, 0), (0, -1), (True, 0), (0, 1.0)])
def test_bad_member_or_step_is_refused(store: CheckpointStore, member: Any, step: Any) -> None:
    with pytest.raises(ConfigError):
        store.save({}, experiment="exp", member=member, step=step)


@pytest.mark.parametrize("key", ["../outside.ckpt", "/abs.ckpt", "exp//x.ckpt", "exp/./x", ""])
def test_keys_cannot_escape_the_store(store: CheckpointStore, key: str) -> None:
    with pytest.raises(CheckpointError, match="invalid checkpoint key"):
        store.load(CheckpointRef(key, "0" * 64, 0))


def test_store_pickles_and_reopens_lazily(store: CheckpointStore) -> None:
    ref = store.save(_state(), experiment="exp", member=1, step=2)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.url == store.url and clone._fs is None
    assert np.array_equal(clone.load(ref)["w"], _state()["w"])
    assert clone.keys("exp") == [ref.key]


LOAD_IN_CHILD = """
import pickle, sys
store, ref = pickle.loads(sys.stdin.buffer.read())
state = store.load(ref)
store.save(state, experiment="exp", member=9, step=state["step"] + 1)
print(sorted(store.keys("exp"))[-1])
"""


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_another_process_reaches_the_same_store(store_of: Any, kind: str) -> None:
    store = store_of(kind)
    ref = store.save(_state(), experiment="exp", member=1, step=120)
    out = subprocess.run([sys.executable, "-c", LOAD_IN_CHILD], input=pickle.dumps((store, ref)),
                         capture_output=True, check=True, timeout=120)
    written = out.stdout.decode().strip()
    assert written.startswith("exp/member-0009/step-00000121-")
    assert written in store.keys("exp")


def test_a_relative_folder_becomes_an_absolute_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = CheckpointStore("poptrain_checkpoints")
    assert store.url == (tmp_path / "poptrain_checkpoints").resolve().as_uri()
    ref = store.save({"a": 1}, experiment="exp", member=0, step=0)
    monkeypatch.chdir("/")
    assert CheckpointStore(store.url).load(ref) == {"a": 1}
    assert CheckpointStore(tmp_path / "poptrain_checkpoints").url == store.url


def test_repr_shows_the_url_but_not_the_options() -> None:
    store = CheckpointStore("memory://poptrain-repr", secret_option="hunter2")
    assert repr(store) == "CheckpointStore('memory:///poptrain-repr')" and "hunter2" not in repr(store)


def test_docstring_examples_run() -> None:
    import doctest
    import importlib.util

    import poptrain.checkpoints as package
    from poptrain.checkpoints import _tensors, _tree, serialize, store

    modules = [package, serialize, store, _tree]
    if importlib.util.find_spec("torch") is not None:
        modules.append(_tensors)
    for module in modules:
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


@pytest.mark.parametrize("url", ["", None, 3])
def test_a_bad_url_is_refused(url: Any) -> None:
    with pytest.raises(ConfigError, match="'url'"):
        CheckpointStore(url)
