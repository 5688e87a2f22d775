"""The vectorized engine writes the worker path's records, so the CLI and reports read them unchanged."""

from __future__ import annotations

import collections
import json

import pytest

torch = pytest.importorskip("torch")

from poptrain.algorithms import PBT, Truncation  # noqa: E402
from poptrain.cli.main import main as cli  # noqa: E402
from poptrain.errors import ExperimentMismatch  # noqa: E402
from poptrain.space import Float  # noqa: E402
from poptrain.vectorized import SGD, run  # noqa: E402

g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=g)
Y = X @ torch.randn(8, 1, generator=g)
CALLS = collections.Counter()


def model():
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def loss(out, y):
    return torch.nn.functional.mse_loss(out, y)


def evaluate(out, y):
    return {"neg_mse": -torch.nn.functional.mse_loss(out, y)}


def crashing_evaluate(out, y):
    CALLS["eval"] += 1
    if CALLS["eval"] == CALLS["crash_at"]:
        raise RuntimeError("power cut")
    return evaluate(out, y)


def _run(tmp_path, evaluate_fn=evaluate, budget=8, lr_high=0.5):
    return run(
        name="vec", model=model, loss=loss, train_data=(X, Y), eval_data=(X, Y), evaluate=evaluate_fn,
        space={"lr": Float(1e-3, lr_high, log=True), "momentum": Float(0.0, 0.9)},
        strategy=PBT(interval=2, selection=Truncation(0.25)), metric="neg_mse", mode="max",
        population=4, budget=budget, optimizer=SGD(), batch_size=64, seed=0,
        storage=f"sqlite:///{tmp_path}/v.db", checkpoints=str(tmp_path / "ck"),
    )


def test_records_match_the_worker_path_and_the_cli_reads_them(tmp_path, capsys):
    res = _run(tmp_path)
    assert res.status == "done" and res.experiment["engine"] == "vectorized"
    assert [m["step"] for m in res.members] == [8] * 4 and {m["state"] for m in res.members} == {"done"}
    seen = collections.Counter((h["member"], h["step"]) for h in res.history)
    assert set(seen) == {(m, s) for m in range(4) for s in range(1, 9)} and max(seen.values()) == 1
    assert res.lineage, "expected exploits"
    for e in res.lineage:
        assert e["step"] == e["donor_step"] and e["step"] % 2 == 0 and e["member"] != e["donor"]
    assert res.best["step"] == 8 and res.best["schedule"][-1]["end_step"] == 8
    # the scores in history are the engine's: the best member's last row carries its score
    last = {h["member"]: h["metrics"]["neg_mse"] for h in res.history if h["step"] == 8}
    assert res.best["score"] == pytest.approx(max(last.values()))
    capsys.readouterr()
    assert cli(["best", "--json", "--storage", f"sqlite:///{tmp_path}/v.db", "--name", "vec"]) == 0
    assert json.loads(capsys.readouterr().out)["member"] == res.best["member"]
    assert cli(["lineage", "--json", "--storage", f"sqlite:///{tmp_path}/v.db"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(res.lineage)


def test_a_crashed_run_resumes_from_its_last_ready_point(tmp_path):
    CALLS.clear()
    CALLS["crash_at"] = 5  # during step 5: steps 1-4 and their ready points are recorded
    with pytest.raises(RuntimeError, match="power cut"):
        _run(tmp_path, evaluate_fn=crashing_evaluate)
    res = _run(tmp_path, evaluate_fn=crashing_evaluate)
    assert res.status == "done"
    seen = collections.Counter((h["member"], h["step"]) for h in res.history)
    assert set(seen) == {(m, s) for m in range(4) for s in range(1, 9)} and max(seen.values()) == 1
    # the same run uninterrupted gives the same final scores
    fresh = _run(tmp_path / "fresh")
    assert [m["score"] for m in res.members] == pytest.approx([m["score"] for m in fresh.members], rel=1e-5)


def test_reused_name_with_another_space_is_refused(tmp_path):
    _run(tmp_path, budget=2)
    with pytest.raises(ExperimentMismatch, match="space"):
        _run(tmp_path, budget=2, lr_high=0.9)
