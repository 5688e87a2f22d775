"""How long the HTML report takes, and how big it is, for a large population.

    python bench/report_size.py                      # 256 members × 200 steps, synthetic records
    python bench/report_size.py --source run         # the same size trained for real into SQLite
    python bench/report_size.py --members 64 --steps 100

Prints one JSON object. ``--source synthetic`` times building the report
from records shaped like ``load_result``'s; ``--source run`` first trains a
population of trivial members with the inline executor into a SQLite file,
then times ``poptrain report`` end to end (reading storage included).
The targets: under 5 s and under 20 MB at 256 × 200.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TRAINABLE = '''
import poptrain as pt
from poptrain.algorithms import PBT, Truncation
from poptrain.space import Choice, Float


class Climber:
    def __init__(self, config):
        self.x = 0.0
        self.apply_config(config)

    def apply_config(self, config):
        self.rate = config["lr"] * (1.2 if config["act"] == "gelu" else 1.0)

    def step(self):
        self.x += self.rate
        return {"score": self.x, "loss": 1.0 / (1.0 + self.x)}

    def state_dict(self):
        return {"x": self.x}

    def load_state_dict(self, state):
        self.x = float(state["x"])


def make(members, steps):
    return pt.Experiment(
        name="bench", trainable=Climber, metric="score", population=members, budget=steps, seed=0,
        space={"lr": Float(1e-4, 1.0, log=True), "opt": {"momentum": Float(0.0, 0.99)},
               "act": Choice(["relu", "tanh", "gelu"])},
        strategy=PBT(interval=10, selection=Truncation(0.25)),
    )
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--source", choices=["synthetic", "run"], default="synthetic")
    parser.add_argument("--keep", default=None, metavar="FILE", help="keep the report at FILE")
    args = parser.parse_args()

    from poptrain.reporting.report import build_report, read_report_data

    out: dict = {"members": args.members, "steps": args.steps, "source": args.source}
    with tempfile.TemporaryDirectory() as tmp:
        if args.source == "synthetic":
            from poptrain.reporting.synthetic import synthetic_result

            result = synthetic_result(members=args.members, steps=args.steps, interval=10, seed=0)
            started = time.perf_counter()
            text = build_report(result)
            out["report_s"] = round(time.perf_counter() - started, 3)
            size = len(text.encode("utf-8"))
            data = read_report_data(text)
        else:
            import poptrain as pt
            from poptrain.reporting.commands import report_command
            from poptrain.trainable import load_file

            file = Path(tmp) / "bench_trainable.py"
            file.write_text(TRAINABLE)
            experiment = load_file(str(file)).make(args.members, args.steps)
            url = f"sqlite:///{tmp}/bench.db"
            started = time.perf_counter()
            pt.run(experiment, storage=url, checkpoints=f"{tmp}/ck", workers=1, executor="inline")
            out["train_s"] = round(time.perf_counter() - started, 1)
            path = Path(tmp) / "report.html"
            started = time.perf_counter()
            with open(os.devnull, "w") as quiet:
                report_command(url, None, path, stream=quiet)
            out["report_s"] = round(time.perf_counter() - started, 3)  # reading storage included
            text = path.read_text(encoding="utf-8")
            size = len(text.encode("utf-8"))
            data = read_report_data(text)
        if args.keep:
            Path(args.keep).write_text(text, encoding="utf-8")
    out["history_rows"] = len(data["history"]["step"])
    out["segments"] = len(data["segments"])
    out["exploits"] = len(data["lineage"])
    out["bytes"] = size
    out["mb"] = round(size / 1e6, 2)
    out["under_5s"] = out["report_s"] < 5.0
    out["under_20mb"] = size < 20 * 1024 * 1024
    print(json.dumps(out))
    return 0 if out["under_5s"] and out["under_20mb"] else 1


if __name__ == "__main__":
    sys.exit(main())
