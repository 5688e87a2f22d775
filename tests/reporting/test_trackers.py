"""Tracker callbacks: TensorBoard event files and an MLflow file store, read back."""

from __future__ import annotations

import pickle

import pytest

from poptrain.reporting.trackers import MLflowTracker, TensorBoardTracker, Tracker, Trackers

EVENT = {"member": 1, "step": 4, "donor": 0, "donor_step": 4, "old_config": {"lr": 0.1, "act": "relu"},
         "new_config": {"lr": 0.08, "act": "relu"}}


def _feed(tracker):
    for member, rate in ((0, 0.1), (1, 0.05)):
        for step in range(1, 5):
            tracker.on_step(member, step, {"acc": rate * step, "bad": float("nan")},
                            {"lr": rate, "act": "relu", "nested": {"wd": 1e-4}})
    tracker.on_exploit(EVENT)
    tracker.on_step(1, 5, {"acc": 0.5}, EVENT["new_config"])
    tracker.close()


def test_trackers_follow_the_protocol_and_pickle(tmp_path):
    for t in (TensorBoardTracker(tmp_path / "tb"), MLflowTracker(tmp_path / "ml"), Trackers()):
        assert isinstance(t, Tracker)
        clone = pickle.loads(pickle.dumps(t))
        assert type(clone) is type(t)


def test_tensorboard_writes_metrics_hyperparameters_and_exploits_per_member(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = TensorBoardTracker(tmp_path / "tb")
    tracker.on_step(0, 1, {"acc": 0.0}, {"lr": 0.1})
    tracker = pickle.loads(pickle.dumps(tracker))  # as a worker process receives it
    _feed(tracker)
    runs = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert runs == ["member_000", "member_001"]
    acc = EventAccumulator(str(tmp_path / "tb" / "member_001"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    assert {"metrics/acc", "hparams/lr", "hparams/nested.wd", "exploit/donor"} <= set(scalars)
    assert "metrics/bad" not in scalars  # NaN is not plotted
    assert [(e.step, round(e.value, 6)) for e in acc.Scalars("hparams/lr")] == \
        [(1, 0.05), (2, 0.05), (3, 0.05), (4, 0.05), (5, 0.08)]
    assert [(e.step, e.value) for e in acc.Scalars("exploit/donor")] == [(4, 0.0)]
    texts = acc.Tags()["tensors"]
    assert "exploit/text_summary" in texts
    exploit_text = acc.Tensors("exploit/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "copied member 0" in exploit_text and "lr: 0.05" not in exploit_text and "lr: 0.1 → 0.08" in exploit_text


def test_mlflow_logs_one_run_per_member_under_a_parent(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = tmp_path / "mlruns"
    _feed(MLflowTracker(store, experiment="pbt-test", run_name="quad"))
    client = MlflowClient(store.resolve().as_uri())
    exp = client.get_experiment_by_name("pbt-test")
    runs = client.search_runs([exp.experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {"quad", "member 0", "member 1"}
    parent = by_name["quad"].info.run_id
    m1 = by_name["member 1"]
    assert m1.data.tags["mlflow.parentRunId"] == parent
    assert m1.data.params["lr"] == "0.05" and m1.data.params["nested.wd"] == "0.0001"
    assert [(m.step, m.value) for m in client.get_metric_history(m1.info.run_id, "hp.lr")] == \
        [(1, 0.05), (2, 0.05), (3, 0.05), (4, 0.05), (5, 0.08)]
    assert [m.value for m in client.get_metric_history(m1.info.run_id, "acc")][-1] == 0.5
    assert "bad" not in m1.data.metrics
    assert "copied member 0" in m1.data.tags["exploit.step_4"]
    assert m1.info.status == "FINISHED"
    artifacts = [a.path for a in client.list_artifacts(m1.info.run_id, "exploits")]
    assert artifacts == ["exploits/step_000004.json"]


def test_a_reopened_mlflow_tracker_continues_the_same_runs(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    t = MLflowTracker(store)
    t.on_step(0, 1, {"acc": 0.1}, {"lr": 0.1})
    t.close()
    t = MLflowTracker(store)  # a restarted worker
    t.on_step(0, 2, {"acc": 0.2}, {"lr": 0.1})
    t.close()
    client = MlflowClient(store.resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("poptrain").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["member 0", "poptrain"]


def test_a_missing_package_fails_late_with_the_pip_command(tmp_path, monkeypatch):
    import poptrain.reporting.trackers as trackers

    real = trackers.require

    def fake(module, *, feature):
        if module.split(".")[0] in ("mlflow", "tensorboard", "tensorboardX"):
            return real("poptrain_no_such_module_" + module.split(".")[0], feature=feature)
        return real(module, feature=feature)

    monkeypatch.setattr(trackers, "require", fake)
    t = MLflowTracker(tmp_path)  # constructing costs nothing and needs nothing
    with pytest.raises(ImportError, match="the MLflow tracker needs .* pip install"):
        t.on_step(0, 1, {"acc": 1.0}, {})
    tb = TensorBoardTracker(tmp_path)
    with pytest.raises(ImportError, match="the TensorBoard tracker needs .* pip install"):
        tb.on_step(0, 1, {"acc": 1.0}, {})


def test_several_trackers_act_as_one():
    calls = []

    class Rec:
        def on_step(self, *a):
            calls.append(("step", a))

        def on_exploit(self, e):
            calls.append(("exploit", e["member"]))

        def close(self):
            calls.append(("close",))

    both = Trackers(Rec(), Rec())
    both.on_step(0, 1, {}, {})
    both.on_exploit(EVENT)
    both.close()
    assert [c[0] for c in calls] == ["step", "step", "exploit", "exploit", "close", "close"]


def test_trackers_driven_by_a_real_worker(tmp_path):
    """A worker of a real quadratic run calls the trackers once per step and once per exploit."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import poptrain as pt
    from poptrain.executors.job import WorkerJob
    from poptrain.storage import open_storage
    from poptrain.trainable import load_file
    from reporting_helpers import EXAMPLES

    exp = load_file(str(EXAMPLES / "quadratic.py")).experiment
    url = f"sqlite:///{tmp_path}/t.db"
    pt.run(exp, storage=url, checkpoints=str(tmp_path / "ck"), workers=0, executor="inline")
    record = open_storage(url).get_experiment(exp.name)
    steps, exploits = [], []

    class Recorder:
        def on_step(self, member, step, metrics, config):
            steps.append((member, step))

        def on_exploit(self, event):
            exploits.append(event)

        def close(self):
            pass

    tb = TensorBoardTracker(tmp_path / "tb")
    job = WorkerJob(storage_url=url, checkpoints_url=record.spec["checkpoints"], experiment_id=record.id,
                    spec=record.spec, experiment=exp)
    job.make_worker(trackers=[tb, Recorder()]).run()
    tb.close()
    result = pt.load_result(url)
    assert len(steps) == len(result.history)
    assert len(exploits) == len(result.lineage) > 0
    acc = EventAccumulator(str(tmp_path / "tb" / "member_001"), size_guidance={"scalars": 0})
    acc.Reload()
    assert len(acc.Scalars("metrics/Q")) == sum(1 for h in result.history if h["member"] == 1)
    donor_events = EventAccumulator(str(tmp_path / "tb" / "member_000"), size_guidance={"scalars": 0})
    donor_events.Reload()
    assert len(acc.Scalars("exploit/donor")) + len(donor_events.Scalars("exploit/donor")) == len(result.lineage)
