"""Tracker callbacks: send each member's metrics, hyperparameters and exploits elsewhere.

A tracker is any object with the three methods of :class:`Tracker`; the worker
calls ``on_step`` after every trained step and ``on_exploit`` after every
exploit, and ``close`` when it stops. Trackers cross process boundaries with
the workers, so they pickle: the open writers and clients are dropped and
reopened lazily in the new process.

Example:
    >>> from poptrain.reporting.trackers import TensorBoardTracker
    >>> tracker = TensorBoardTracker("runs/pbt")            # doctest: +SKIP
    >>> tracker.on_step(0, 1, {"loss": 0.5}, {"lr": 0.1})   # doctest: +SKIP
    >>> tracker.close()                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

from poptrain._optional import require
from poptrain.reporting.data import finite, flatten


@runtime_checkable
class Tracker(Protocol):
    """What a tracker implements. All three are called from the worker that trains the member."""

    def on_step(self, member: int, step: int, metrics: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        """``member`` finished ``step`` with ``metrics`` while training with ``config``."""

    def on_exploit(self, event: Mapping[str, Any]) -> None:
        """An exploit happened: ``{member, step, donor, donor_step, old_config, new_config, segment, parent_segment}``."""

    def close(self) -> None:
        """Flush and release what the tracker holds."""


def _numeric_items(values: Mapping[str, Any]) -> list[tuple[str, float]]:
    out = []
    for k, v in values.items():
        if isinstance(v, bool):
            out.append((k, float(v)))
            continue
        x = finite(v)
        if x is not None:
            out.append((k, x))
    return out


def _describe(event: Mapping[str, Any]) -> str:
    old = flatten(event.get("old_config"))
    new = flatten(event.get("new_config"))
    changes = ", ".join(f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in new if old.get(k) != new.get(k))
    return (f"member {event.get('member')} at step {event.get('step')} copied member {event.get('donor')}"
            f" (its step {event.get('donor_step')}); {changes or 'config unchanged'}")


class TensorBoardTracker:
    """Writes one TensorBoard run per member under ``log_dir/member_NNN``.

    Per step: ``metrics/<name>`` for each metric and ``hparams/<name>`` for
    each numeric hyperparameter (a categorical one as text when it changes).
    Per exploit: ``exploit/donor`` (the donor's id) and a text entry saying
    who was copied and which hyperparameters changed.

    Uses ``torch.utils.tensorboard`` (needs the ``tensorboard`` package) and
    falls back to ``tensorboardX``.
    """

    def __init__(self, log_dir: str | os.PathLike[str], *, flush_secs: int = 10) -> None:
        self.log_dir = str(log_dir)
        self.flush_secs = flush_secs
        self._writers: dict[int, Any] = {}
        self._last_text: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"log_dir": self.log_dir, "flush_secs": self.flush_secs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["log_dir"], flush_secs=state["flush_secs"])  # type: ignore[misc]

    @staticmethod
    def _writer_class() -> Any:
        try:
            require("tensorboard", feature="the TensorBoard tracker")
            return require("torch.utils.tensorboard", feature="the TensorBoard tracker").SummaryWriter
        except ImportError as first:
            try:
                return require("tensorboardX", feature="the TensorBoard tracker").SummaryWriter
            except ImportError:
                raise first from None

    def _writer(self, member: int) -> Any:
        with self._lock:
            writer = self._writers.get(member)
            if writer is None:
                cls = self._writer_class()
                path = Path(self.log_dir) / f"member_{int(member):03d}"
                writer = cls(log_dir=str(path), flush_secs=self.flush_secs)
                self._writers[member] = writer
            return writer

    def on_step(self, member: int, step: int, metrics: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        w = self._writer(member)
        for name, value in _numeric_items(metrics):
            w.add_scalar(f"metrics/{name}", value, step)
        flat = flatten(config)
        for name, value in _numeric_items(flat):
            w.add_scalar(f"hparams/{name}", value, step)
        for name, value in flat.items():
            if isinstance(value, str) or value is None:
                if self._last_text.get((member, name), object()) != value:
                    self._last_text[(member, name)] = value
                    w.add_text(f"hparams/{name}", str(value), step)

    def on_exploit(self, event: Mapping[str, Any]) -> None:
        member = int(event["member"])
        step = int(event.get("step") or 0)
        w = self._writer(member)
        if event.get("donor") is not None:
            w.add_scalar("exploit/donor", float(event["donor"]), step)
        w.add_text("exploit", _describe(event), step)
        w.flush()

    def close(self) -> None:
        with self._lock:
            for w in self._writers.values():
                w.flush()
                w.close()
            self._writers.clear()


class MLflowTracker:
    """Logs one MLflow run per member (named ``member N``), nested under one parent run.

    Per step: each metric, and each numeric hyperparameter as the metric
    ``hp.<name>`` (MLflow params cannot change, a PBT schedule does); the
    first config is also logged as params and the current one as the tag
    ``poptrain.config``. Per exploit: the metric ``exploit.donor``, a tag
    ``exploit.step_<step>`` with a description, and the event as the artifact
    ``exploits/step_<step>.json``.

    Args:
        tracking_uri: where MLflow stores runs; None for MLflow's own default.
            A local folder (or ``file:`` URI) selects MLflow's file store,
            which recent MLflow versions only open when
            ``MLFLOW_ALLOW_FILE_STORE=true``; the tracker sets that variable
            for you in that case only.
        experiment: the MLflow experiment the runs go to (created if missing).
        run_name: the name of the parent run.
    """

    def __init__(self, tracking_uri: str | os.PathLike[str] | None = None, *, experiment: str = "poptrain",
                 run_name: str = "poptrain") -> None:
        self.tracking_uri = None if tracking_uri is None else str(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self._client: Any = None
        self._experiment_id: str | None = None
        self._parent: str | None = None
        self._runs: dict[int, str] = {}
        self._params_logged: set[int] = set()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "experiment": self.experiment, "run_name": self.run_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tracking_uri"], experiment=state["experiment"],  # type: ignore[misc]
                      run_name=state["run_name"])

    def _uri(self) -> str | None:
        uri = self.tracking_uri
        if uri is None:
            return None
        if "://" not in uri and not uri.startswith("file:"):
            uri = Path(uri).resolve().as_uri()
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return uri

    def _setup(self) -> Any:
        if self._client is None:
            tracking = require("mlflow.tracking", feature="the MLflow tracker")
            client = tracking.MlflowClient(self._uri())
            exp = client.get_experiment_by_name(self.experiment)
            if exp is None:
                try:
                    self._experiment_id = client.create_experiment(self.experiment)
                except Exception:  # another process created it first
                    self._experiment_id = client.get_experiment_by_name(self.experiment).experiment_id
            else:
                self._experiment_id = exp.experiment_id
            self._client = client
        return self._client

    def _find(self, tags: Mapping[str, str]) -> str | None:
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self._client.search_runs([self._experiment_id], query, max_results=1)
        return runs[0].info.run_id if runs else None

    def _parent_run(self) -> str:
        if self._parent is None:
            tags = {"poptrain.role": "population", "poptrain.run": self.run_name}
            self._parent = self._find(tags) or self._client.create_run(
                self._experiment_id, run_name=self.run_name, tags=tags).info.run_id
        return self._parent

    def _run(self, member: int) -> str:
        with self._lock:
            self._setup()
            run = self._runs.get(member)
            if run is None:
                parent = self._parent_run()
                tags = {"poptrain.member": str(member), "mlflow.parentRunId": parent}
                run = self._find(tags) or self._client.create_run(
                    self._experiment_id, run_name=f"member {member}", tags=tags).info.run_id
                self._runs[member] = run
            return run

    def on_step(self, member: int, step: int, metrics: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run = self._run(member)
        ts = int(time.time() * 1000)
        flat = flatten(config)
        batch = [Metric(_key(k), v, ts, int(step)) for k, v in _numeric_items(metrics)]
        batch += [Metric(_key(f"hp.{k}"), v, ts, int(step)) for k, v in _numeric_items(flat)]
        params = []
        if member not in self._params_logged:
            self._params_logged.add(member)
            params = [Param(_key(k), str(v)[:500]) for k, v in flat.items()]
        tags = [RunTag("poptrain.config", json.dumps(flat, default=str)[:5000])]
        try:
            self._client.log_batch(run, metrics=batch, params=params, tags=tags)
        except Exception:
            if not params:
                raise
            # The params are already on a run reopened after a restart: log without them.
            self._client.log_batch(run, metrics=batch, tags=tags)

    def on_exploit(self, event: Mapping[str, Any]) -> None:
        member = int(event["member"])
        step = int(event.get("step") or 0)
        run = self._run(member)
        if event.get("donor") is not None:
            self._client.log_metric(run, "exploit.donor", float(event["donor"]), step=step)
        self._client.set_tag(run, f"exploit.step_{step}", _describe(event)[:5000])
        plain = json.loads(json.dumps(dict(event), default=str))
        self._client.log_dict(run, plain, f"exploits/step_{step:06d}.json")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                for run in self._runs.values():
                    self._client.set_terminated(run)
                if self._parent is not None:
                    self._client.set_terminated(self._parent)
            self._runs.clear()
            self._parent = None


def _key(name: str) -> str:
    """An MLflow-safe key (letters, digits, ``_ - . / space``)."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


class Trackers:
    """Several trackers called as one (what the worker holds when more than one is given)."""

    def __init__(self, *trackers: Tracker) -> None:
        self.trackers = list(trackers)

    def on_step(self, member: int, step: int, metrics: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        for t in self.trackers:
            t.on_step(member, step, metrics, config)

    def on_exploit(self, event: Mapping[str, Any]) -> None:
        for t in self.trackers:
            t.on_exploit(event)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


__all__ = ["Tracker", "TensorBoardTracker", "MLflowTracker", "Trackers"]
