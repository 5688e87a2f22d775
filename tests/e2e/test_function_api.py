"""The function-style trainable runs the same invariants as the class API, across processes."""

from __future__ import annotations

import pytest

import poptrain as pt
from poptrain.errors import ConfigError, TrainableError

import trainables as T
from test_core_run import check_invariants


@pytest.mark.parametrize("executor,workers", [("inline", 1), ("local", 2)])
def test_generator_trainable_exploits_with_restored_state_and_new_config(tmp_path, executor, workers):
    exp = T.climber_experiment(trainable=T.climbing, population=4, budget=24)
    res = pt.run(exp, storage=f"sqlite:///{tmp_path}/f.db", checkpoints=str(tmp_path / "ck"),
                 workers=workers, executor=executor)
    check_invariants(res, exp.space, 24)
    assert res.lineage
    assert res.experiment["trainable"].endswith(":climbing")
    segs = {s["segment"]: s for s in res.segments}
    rows = {(h["segment"], h["step"]): h["metrics"] for h in res.history}
    for (seg, _), metrics in rows.items():
        assert metrics["rate_used"] == pytest.approx(segs[seg]["config"]["rate"])
    checked = 0
    for e in res.lineage:
        first = rows.get((e["segment"], segs[e["segment"]]["start_step"] + 1))
        if first is None:
            continue
        assert first["x_before"] == pytest.approx(T.row_at(rows, segs, e["parent_segment"], e["donor_step"])["score"])
        checked += 1
    assert checked


def test_bad_function_trainables():
    with pytest.raises(ConfigError, match="generator function"):
        pt.function_trainable(lambda config, ctx: None)

    @pt.function_trainable
    def stops(config, ctx):
        yield {"score": 1.0}

    member = stops({})
    member.step()
    with pytest.raises(TrainableError, match="returned instead of yielding"):
        member.step()

    @pt.function_trainable
    def tracks_a_number(config, ctx):
        ctx.track(n=3)
        yield {}

    with pytest.raises(ConfigError, match="ctx.track"):
        tracks_a_number({}).step()
