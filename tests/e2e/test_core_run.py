"""End-to-end runs on a real SQLite file, real checkpoint folder and real worker processes."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest

import poptrain as pt
from poptrain.errors import ExperimentMismatch, TrainableError
from poptrain.executors.local import WorkerProcessError
from poptrain.space import Float, Space

import trainables as T

ROOT = Path(__file__).resolve().parents[2]


def _run(exp, tmp_path, **kw):
    kw.setdefault("workers", 1)
    kw.setdefault("executor", "inline")
    return pt.run(exp, storage=f"sqlite:///{tmp_path}/p.db", checkpoints=str(tmp_path / "ck"), **kw)


def check_invariants(res, space: Space, budget: int) -> None:
    """The DESIGN invariants that can be read back from storage."""
    seen = collections.Counter((h["member"], h["segment"], h["step"]) for h in res.history)
    assert max(seen.values()) == 1, "a step was recorded twice"
    by_seg = collections.defaultdict(list)
    for h in res.history:
        by_seg[h["segment"]].append(h["step"])
    segs = {s["segment"]: s for s in res.segments}
    for seg, steps in by_seg.items():
        start = segs[seg]["start_step"]
        assert sorted(steps) == list(range(start + 1, start + 1 + len(steps))), f"gap in segment {seg}"
    for s in res.segments:
        space.validate(s["config"])
    for m in res.members:
        assert m["state"] == "done" and m["step"] == budget
    # a member's weights never go back in time, so no member trains more than its budget
    per_member = collections.Counter(h["member"] for h in res.history)
    assert max(per_member.values()) <= budget
    for e in res.lineage:
        assert e["member"] != e["donor"]


def test_every_step_trains_with_its_segments_config_and_exploit_copies_donor_weights(tmp_path):
    exp = T.climber_experiment(population=4, budget=24)
    res = _run(exp, tmp_path)
    check_invariants(res, exp.space, 24)
    assert res.lineage, "expected exploits"
    segs = {s["segment"]: s for s in res.segments}
    rows = {(h["segment"], h["step"]): h["metrics"] for h in res.history}
    for (seg, step), metrics in rows.items():
        # restore first, then apply the config: the stale rate in the state never wins
        assert metrics["rate_used"] == pytest.approx(segs[seg]["config"]["rate"])
    checked = 0
    for e in res.lineage:
        first = rows.get((e["segment"], segs[e["segment"]]["start_step"] + 1))
        if first is None:  # copied on again before it trained
            continue
        donor_row = T.row_at(rows, segs, e["parent_segment"], e["donor_step"])
        assert first["x_before"] == pytest.approx(donor_row["score"])
        checked += 1
    assert checked


def test_quadratic_pbt_beats_training_alone(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    import quadratic

    pbt = _run(quadratic.make_experiment(name="pbt"), tmp_path)
    alone = _run(quadratic.make_experiment(name="alone", exploit=False), tmp_path)
    assert pbt.best["score"] >= 1.19
    assert alone.best["score"] < 1.0
    assert not alone.lineage


def test_same_seed_same_decisions(tmp_path):
    a = _run(T.climber_experiment(seed=3), tmp_path / "a")
    b = _run(T.climber_experiment(seed=3), tmp_path / "b")
    strip = lambda r: [(e["member"], e["step"], e["donor"], e["new_config"]) for e in r.lineage]  # noqa: E731
    assert strip(a) == strip(b) and strip(a)


def test_sync_decisions_do_not_depend_on_worker_count(tmp_path):
    one = _run(T.climber_experiment(synchronous=True, population=6), tmp_path / "one")
    three = _run(T.climber_experiment(synchronous=True, population=6), tmp_path / "three", workers=3, executor="local")
    strip = lambda r: sorted((e["member"], e["step"], e["donor"], str(e["new_config"])) for e in r.lineage)  # noqa: E731
    assert strip(one) == strip(three) and strip(one)
    check_invariants(three, T.climber_experiment().space, 20)
    # sync: an exploit at step k copies a donor at step k
    assert all(e["step"] == e["donor_step"] for e in three.lineage)


def test_local_processes_population_larger_than_workers(tmp_path):
    exp = T.climber_experiment(population=8, budget=16)
    res = _run(exp, tmp_path, workers=2, executor="local")
    check_invariants(res, exp.space, 16)
    # garbage collected: the files left are exactly the checkpoints storage records,
    # each member's latest among them
    from poptrain.checkpoints import CheckpointStore
    from poptrain.storage import Storage

    st = Storage(f"sqlite:///{tmp_path}/p.db")
    records = {c["key"] for c in st.checkpoint_records(1)}
    assert set(CheckpointStore(str(tmp_path / "ck")).keys("climb")) == records
    assert {m.checkpoint.key for m in st.members(1)} <= records
    assert len(records) <= 8 + 1
    assert len({h["member"] for h in res.history}) == 8


def test_transient_failure_restarts_from_checkpoint(tmp_path):
    T.FailsOnce.marker = str(tmp_path / "failed-once")
    exp = T.climber_experiment(trainable=T.FailsOnce, population=2, budget=12)
    res = _run(exp, tmp_path)
    assert Path(T.FailsOnce.marker).exists()
    assert sum(m["failures"] for m in res.members) == 1
    check_invariants(res, exp.space, 12)


def test_member_failing_for_good_is_marked_failed_and_others_finish(tmp_path):
    exp = T.climber_experiment(
        trainable=T.AlwaysFailsSlow, population=3, budget=8, max_failures=2,
        initial_configs=[{"rate": 0.1}, {"rate": 0.5}, {"rate": 0.6}],
    )
    res = _run(exp, tmp_path)
    states = {m["member"]: m["state"] for m in res.members}
    assert states[0] == "failed" and states[1] == states[2] == "done"
    failed = res.members[0]
    assert failed["failures"] == 3 and "this member cannot train" in failed["error"]
    from poptrain.storage import Storage

    claims = len(Storage(f"sqlite:///{tmp_path}/p.db").leases(1))
    again = _run(exp, tmp_path)  # a plain resume leaves the failed member alone
    assert len(Storage(f"sqlite:///{tmp_path}/p.db").leases(1)) == claims and again.members[0]["state"] == "failed"
    retried = _run(exp, tmp_path, retry_failed=True)  # it is tried again, from its last checkpoint
    assert len(Storage(f"sqlite:///{tmp_path}/p.db").leases(1)) == claims + 3
    assert retried.members[0]["state"] == "failed" and retried.members[1]["step"] == 8


def test_missing_metric_stops_with_a_clear_error_and_keeps_storage(tmp_path):
    exp = T.climber_experiment(trainable=T.NoMetric, population=2, budget=4)
    with pytest.raises(TrainableError, match="without the experiment's metric 'score'"):
        _run(exp, tmp_path)
    with pytest.raises(WorkerProcessError, match="without the experiment's metric 'score'"):
        _run(exp, tmp_path, workers=2, executor="local")
    res = pt.load_result(f"sqlite:///{tmp_path}/p.db", "climb")
    assert res.history == [] and len(res.members) == 2


def test_nan_member_is_never_a_donor(tmp_path):
    exp = T.climber_experiment(trainable=T.NaNMember, population=4, budget=20,
                               initial_configs=[{"rate": 0.95}, {"rate": 0.1}, {"rate": 0.2}, {"rate": 0.3}])
    res = _run(exp, tmp_path)
    assert res.lineage
    nan_segments = {s["segment"] for s in res.segments if s["config"]["rate"] > 0.9}
    assert all(e["parent_segment"] not in nan_segments for e in res.lineage)


def test_reused_name_with_different_space_is_refused_and_kept(tmp_path):
    _run(T.climber_experiment(budget=4), tmp_path)
    other = T.climber_experiment(budget=4)
    other.space = Space({"rate": Float(0.01, 2.0)})
    with pytest.raises(ExperimentMismatch, match="space"):
        _run(other, tmp_path)
    res = pt.load_result(f"sqlite:///{tmp_path}/p.db", "climb")
    assert res.status == "done" and len(res.history) == 4 * 4


def test_finished_experiment_returns_its_result_without_training(tmp_path):
    first = _run(T.climber_experiment(budget=8), tmp_path)
    again = _run(T.climber_experiment(budget=8), tmp_path)
    assert len(again.history) == len(first.history) and again.best == first.best


def test_unsaveable_state_stops_with_the_key_named(tmp_path):
    from poptrain.errors import UnsafeStateError

    exp = T.climber_experiment(trainable=T.Unsaveable, population=2, budget=4)
    with pytest.raises(UnsafeStateError, match=r"\['optimizer'\]\['hook'\]"):
        _run(exp, tmp_path)
    with pytest.raises(WorkerProcessError, match=r"\['optimizer'\]\['hook'\]"):
        _run(exp, tmp_path, workers=2, executor="local")
    res = pt.load_result(f"sqlite:///{tmp_path}/p.db", "climb")
    assert res.history == [] and all(m["failures"] == 0 for m in res.members)
