"""What crosses a process boundary pickles; optional packages fail late with the pip command."""

from __future__ import annotations

import pickle

import pytest

from poptrain._optional import require
from poptrain.checkpoints import CheckpointStore
from poptrain.executors.job import WorkerJob
from poptrain.experiment import Experiment, from_spec
from poptrain.space import Float
from poptrain.storage import Storage


class Counter:
    def __init__(self, config):
        self.n, self.by = 0, config["by"]

    def step(self):
        self.n += self.by
        return {"n": float(self.n)}

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


def _experiment() -> Experiment:
    return Experiment(name="pickles", trainable=Counter, space={"by": Float(0.1, 2.0)}, metric="n", budget=4)


def test_worker_job_pickles_as_urls_and_spec_and_rebuilds_the_worker(tmp_path):
    exp = _experiment()
    url = f"sqlite:///{tmp_path}/p.db"
    st = Storage(url)
    record = st.create_experiment(exp.name, exp.spec(), exp.initial_member_configs())
    job = WorkerJob(storage_url=url, checkpoints_url=str(tmp_path / "ck"), experiment_id=record.id, spec=record.spec,
                    experiment=exp, checkpoint_options={"auto_mkdir": True})
    clone = pickle.loads(pickle.dumps(job))
    assert clone.experiment is None and clone.spec == job.spec  # the class travels as its import path
    worker = clone.make_worker()
    assert worker.experiment.trainable is Counter and worker.experiment.space == exp.space
    assert worker.run().steps == 8 * 4
    assert st.is_finished(record.id)


def test_storage_store_experiment_and_strategy_pickle(tmp_path):
    st = pickle.loads(pickle.dumps(Storage(f"sqlite:///{tmp_path}/p.db")))
    assert st.list_experiments() == []
    store = pickle.loads(pickle.dumps(CheckpointStore(str(tmp_path / "ck"))))
    ref = store.save({"w": [1.0]}, experiment="e", member=0, step=1)
    assert store.load(ref) == {"w": [1.0]}
    exp = _experiment()
    again = pickle.loads(pickle.dumps(exp))
    assert again.spec() == exp.spec()
    assert from_spec(exp.spec()).spec() == exp.spec()


def test_missing_optional_package_names_the_pip_command(monkeypatch):
    import sys

    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(ImportError, match=r"the HTML report needs the 'plotly' package.*pip install 'poptrain\[report\]'"):
        require("plotly", feature="the HTML report")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch==2.13.0"):
        require("torch", feature="poptrain.vectorized")
