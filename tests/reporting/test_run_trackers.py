"""Trackers given to poptrain.run reach every worker process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import poptrain as pt

ROOT = Path(__file__).resolve().parents[2]


class JsonLinesTracker:
    """A tracker writing one JSON line per event to a file per process (pickles as its folder)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def _write(self, kind: str, payload: dict) -> None:
        import os

        with open(Path(self.folder) / f"{os.getpid()}.jsonl", "a") as fh:
            fh.write(json.dumps({"kind": kind, **payload}) + "\n")

    def on_step(self, member, step, metrics, config) -> None:
        self._write("step", dict(member=member, step=step))

    def on_exploit(self, event) -> None:
        self._write("exploit", dict(member=event["member"], donor=event["donor"]))

    def close(self) -> None:
        self._write("close", {})


@pytest.mark.parametrize("executor,workers", [("inline", 1), ("local", 2)])
def test_trackers_see_every_step_and_exploit(tmp_path, executor, workers):
    import sys

    sys.path.insert(0, str(ROOT / "examples"))
    import quadratic

    out = tmp_path / "events"
    out.mkdir()
    res = pt.run(quadratic.make_experiment(), storage=f"sqlite:///{tmp_path}/q.db", checkpoints=str(tmp_path / "ck"),
                 workers=workers, executor=executor, trackers=[JsonLinesTracker(str(out))])
    events = [json.loads(line) for f in out.glob("*.jsonl") for line in f.read_text().splitlines()]
    steps = {(e["member"], e["step"]) for e in events if e["kind"] == "step"}
    assert steps == {(h["member"], h["step"]) for h in res.history}
    assert sum(e["kind"] == "exploit" for e in events) == len(res.lineage)
    assert sum(e["kind"] == "close" for e in events) == workers
