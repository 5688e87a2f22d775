"""Trainables for the scale and fault tests; they run in worker processes, CLI workers and Ray tasks.

Two environment variables reach every kind of worker process:
``POPTRAIN_TEST_STEP_S`` (seconds one step sleeps, so that faults land
mid-interval) and ``POPTRAIN_TEST_STEP_LOG`` (a file that gets one line per
``step()`` call, counting work the history may have discarded).
"""

from __future__ import annotations

import os
import time

from poptrain.algorithms import PBT, Truncation
from poptrain.experiment import Experiment
from poptrain.space import Float


class Walker:
    """Score grows by ``rate`` per step; every step reports the process that trained it."""

    def __init__(self, config: dict) -> None:
        self.x = 0.0
        self.rate = config["rate"]

    def apply_config(self, config: dict) -> None:
        self.rate = config["rate"]

    def step(self) -> dict:
        delay = float(os.environ.get("POPTRAIN_TEST_STEP_S", "0") or 0)
        if delay:
            time.sleep(delay)
        log = os.environ.get("POPTRAIN_TEST_STEP_LOG")
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{os.getpid()}\n".encode())
            finally:
                os.close(fd)
        before = self.x
        self.x += self.rate
        return {"score": self.x, "x_before": before, "rate_used": self.rate, "pid": float(os.getpid())}

    def state_dict(self) -> dict:
        return {"x": self.x, "rate": self.rate}

    def load_state_dict(self, state: dict) -> None:
        self.x = float(state["x"])
        self.rate = float(state["rate"])


def walker_experiment(name: str = "walk", *, trainable=Walker, population: int = 8, budget: int = 24,
                      interval: int = 4, synchronous: bool = False, seed: int = 0, burn_in: int = 0,
                      **kw) -> Experiment:
    return Experiment(
        name=name,
        trainable=trainable,
        space={"rate": Float(0.01, 1.0)},
        metric="score",
        strategy=PBT(interval=interval, burn_in=burn_in, selection=Truncation(0.25), synchronous=synchronous),
        population=population,
        budget=budget,
        seed=seed,
        **kw,
    )


def experiment_file(path, *, name: str, trainable_in_file: bool = True, **kw) -> str:
    """Write a ``poptrain run`` FILE.py whose trainable is recorded by file path (or by module)."""
    here = os.path.dirname(os.path.abspath(__file__))
    args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    body = [
        "import sys",
        f"sys.path.insert(0, {here!r})",
        "import scale_trainables as S",
    ]
    if trainable_in_file:
        body += ["class Walker(S.Walker):", "    pass", f"experiment = S.walker_experiment({name!r}, trainable=Walker, {args})"]
    else:
        body += [f"experiment = S.walker_experiment({name!r}, {args})"]
    path.write_text("\n".join(body) + "\n")
    return str(path)
