"""Overhead of poptrain's process path on a tiny, fast step.

16 members, a step of about 1 ms of numpy work (one BLAS thread), interval 5,
200 steps each, 2 local worker processes, a checkpoint at every ready point,
SQLite storage. Prints one JSON line: wall_s, ideal_s (pure step time of the
steps trained / workers; the step is timed serially before and after the run
and the mean taken), overhead_ratio = wall_s / ideal_s, and the time
from starting `poptrain run` to the first trained step.

    python bench/overhead.py [--members 16] [--steps 200] [--workers 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import poptrain as pt  # noqa: E402
from poptrain.algorithms import PBT  # noqa: E402
from poptrain.space import Float  # noqa: E402

_A = np.random.default_rng(0).normal(size=(96, 96))
REPS = 1


def work() -> float:
    x = _A
    for _ in range(REPS):
        x = np.tanh(x @ _A * 0.01)
    return float(x[0, 0])


def pure_seconds(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        work()
    return time.perf_counter() - t0


def calibrate(target_s: float = 0.001) -> int:
    global REPS
    REPS = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(50):
            work()
        per = (time.perf_counter() - t0) / 50
        if per >= target_s:
            return REPS
        REPS = max(REPS + 1, int(REPS * target_s / max(per, 1e-6)))


class Tiny:
    def __init__(self, config: dict) -> None:
        self.lr = config["lr"]
        self.w = np.zeros(8)
        self.t = 0

    def apply_config(self, config: dict) -> None:
        self.lr = config["lr"]

    def step(self) -> dict:
        work()
        self.t += 1
        self.w += self.lr
        return {"score": float(self.w[0]) - 0.001 * self.t * self.lr**2}

    def state_dict(self) -> dict:
        return {"w": self.w, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.w = np.array(state["w"])
        self.t = int(state["t"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", type=int, default=5)
    args = ap.parse_args()
    reps = calibrate()

    # Pure step time of the whole population, measured serially in this process,
    # before and after the run: a shared machine's speed drifts, and the mean
    # of the two follows it better than either.
    n = args.members * args.steps
    before = pure_seconds(n)

    exp = pt.Experiment(
        name="overhead", trainable=Tiny, space={"lr": Float(0.01, 1.0, log=True)}, metric="score",
        strategy=PBT(interval=args.interval), population=args.members, budget=args.steps, seed=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = pt.run(exp, storage=f"sqlite:///{tmp}/o.db", checkpoints=f"{tmp}/ck", workers=args.workers, executor="local")
        wall = time.perf_counter() - t0
    after = pure_seconds(n)
    pure = (before + after) / 2
    # An exploit can copy a donor that is ahead, so a member may skip steps:
    # the ideal counts the steps actually trained.
    trained = len(res.history)
    ideal = pure / n * trained / args.workers
    first = time_to_first_step()
    print(json.dumps(dict(
        members=args.members, steps=args.steps, workers=args.workers, interval=args.interval, reps=reps,
        steps_trained=trained,
        step_ms=round(1000 * pure / n, 4), step_ms_before_after=[round(1000 * before / n, 4), round(1000 * after / n, 4)],
        wall_s=round(wall, 4), ideal_s=round(ideal, 4),
        overhead_ratio=round(wall / ideal, 4), exploits=len(res.lineage),
        time_to_first_step_s=round(first, 4),
    )))


FIRST_STEP_FILE = """
import os, time
import numpy as np
import poptrain as pt
from poptrain.algorithms import PBT
from poptrain.space import Float

class First:
    def __init__(self, config): self.t = 0
    def step(self):
        if self.t == 0 and not os.path.exists(os.environ["FIRST_MARK"]):
            with open(os.environ["FIRST_MARK"], "w") as fh: fh.write(repr(time.time()))
        self.t += 1
        return {"score": float(self.t)}
    def state_dict(self): return {"t": self.t}
    def load_state_dict(self, s): self.t = s["t"]

experiment = pt.Experiment(name="first", trainable=First, space={"lr": Float(0.1, 1.0)}, metric="score",
                           strategy=PBT(interval=5), population=2, budget=5)
"""


def time_to_first_step() -> float:
    """Seconds from launching `poptrain run FILE` to the first step() call."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "first.py")
        with open(path, "w") as fh:
            fh.write(FIRST_STEP_FILE)
        mark = os.path.join(tmp, "mark")
        exe = os.path.join(os.path.dirname(sys.executable), "poptrain")
        env = dict(os.environ, FIRST_MARK=mark)
        t0 = time.time()
        subprocess.run([exe, "run", path, "--storage", f"sqlite:///{tmp}/f.db", "--checkpoints", f"{tmp}/ck",
                        "--workers", "2", "--no-progress"], env=env, check=True, cwd=tmp, capture_output=True)
        with open(mark) as fh:
            return float(fh.read()) - t0


if __name__ == "__main__":
    main()
