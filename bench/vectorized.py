"""Vectorized engine vs. the local-process path: PBT on the digits MLP.

Population 32 of a 64-128-10 MLP (scikit-learn ``load_digits``, the fixed
75/25 stratified split of ``examples/digits.py``), SGD with lr, momentum and
weight decay explored, PBT(interval=4), batch size 64, 20 epochs per member,
validation accuracy after every epoch. Both arms do the same work per
member-epoch; each is timed end to end (setup, training, evaluation, PBT
bookkeeping), in a fresh interpreter, the fastest of ``--repeat`` runs kept.
The vectorized arm runs with 1 torch thread and with one per core, and the
faster is reported (the process workers run one thread each). The process arm is ``poptrain.run(..., executor="local",
workers=2)`` with SQLite storage and a local checkpoint folder. Then the
vectorized engine alone at populations 128 and 512 (time, peak memory), each
in a fresh process so that its peak resident memory is its own.

    python bench/vectorized.py            # the full comparison
    python bench/vectorized.py --quick    # 4 epochs, population 128 only in the scaling list

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import torch
from torch.nn import functional as F

import poptrain as pt
from poptrain.algorithms import PBT
from poptrain.space import Float
from poptrain.vectorized import SGD, train_population

# The process arm trains exactly the README's example, on its data split.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from examples.digits import DigitsMLP, data  # noqa: E402

BATCH_SIZE = 64
ARM_TIMEOUT_S = 600
INTERVAL = 4
SPACE = {
    "lr": Float(1e-4, 1.0, log=True),
    "momentum": Float(0.0, 0.99),
    "weight_decay": Float(1e-6, 1e-2, log=True),
}
def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


def accuracy(out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"accuracy": (out.argmax(-1) == y).float().mean(), "val_loss": F.cross_entropy(out, y)}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_vectorized(population: int, epochs: int, device: str = "cpu") -> dict[str, Any]:
    xt, yt, xv, yv = data()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = train_population(
        model=mlp, loss=F.cross_entropy, train_data=(xt, yt), eval_data=(xv, yv), batch_size=BATCH_SIZE,
        evaluate=accuracy, space=SPACE, strategy=PBT(interval=INTERVAL), metric="accuracy", mode="max",
        population=population, budget=epochs, optimizer=SGD(), seed=0, device=device,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out = {
        "population": population,
        "seconds": round(seconds, 3),
        "member_epochs_per_s": round(population * epochs / seconds, 1),
        "best_accuracy": round(result.best.score, 4) if result.best else None,
        "exploits": len(result.exploits),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    if device.startswith("cuda"):
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def run_processes(population: int, epochs: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        experiment = pt.Experiment(
            name="bench-digits", trainable=DigitsMLP, space=SPACE, metric="accuracy", mode="max",
            strategy=PBT(interval=INTERVAL), population=population, budget=epochs, seed=0,
        )
        t0 = time.perf_counter()
        result = pt.run(experiment, storage=f"sqlite:///{tmp}/bench.db", checkpoints=f"{tmp}/ckpt",
                        workers=workers, executor="local")
        seconds = time.perf_counter() - t0
    best = result.best or {}
    return {
        "population": population,
        "workers": workers,
        "seconds": round(seconds, 3),
        "member_epochs_per_s": round(population * epochs / seconds, 1),
        "best_accuracy": round(best["score"], 4) if best.get("score") is not None else None,
        "exploits": len(result.lineage),
    }


def in_fresh_process(arm: str, population: int, epochs: int, device: str = "cpu", workers: int = 2,
                     threads: int = 0) -> dict[str, Any]:
    """Run one arm in a new interpreter, so timings and peak memory do not mix."""
    cmd = [sys.executable, os.path.abspath(__file__), "--arm", arm, "--population", str(population),
           "--epochs", str(epochs), "--device", device, "--workers", str(workers), "--threads", str(threads)]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=ARM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"population": population, "error": f"no result within {ARM_TIMEOUT_S} s", "member_epochs_per_s": 0.0}
    except subprocess.CalledProcessError as exc:
        return {"population": population, "error": (exc.stderr or str(exc))[-400:], "member_epochs_per_s": 0.0}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 epochs; scaling at population 128 only")
    parser.add_argument("--repeat", type=int, default=0, help="runs of each arm, fastest kept (default 3; 1 with --quick)")
    parser.add_argument("--arm", choices=["vectorized", "processes"], help=argparse.SUPPRESS)
    parser.add_argument("--population", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.arm == "vectorized":
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps({**run_vectorized(args.population, args.epochs, args.device),
                          "torch_threads": torch.get_num_threads()}))
        return
    if args.arm == "processes":
        print(json.dumps(run_processes(args.population, args.epochs, args.workers)))
        return

    epochs = 4 if args.quick else 20
    repeat = args.repeat or (1 if args.quick else 3)
    # Alternate the arms and keep each one's fastest run: other load on the
    # machine can only slow a run down. The vectorized arm runs with one torch
    # thread and with one per core (each process worker has one thread): small
    # batched ops gain little from a second thread, and lose a lot when another
    # program holds a core.
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    vec_runs: list[dict[str, Any]] = []
    proc_runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        for threads in thread_counts:
            vec_runs.append(in_fresh_process("vectorized", 32, epochs, threads=threads))
        proc_runs.append(in_fresh_process("processes", 32, epochs, workers=2))
    vec = max(vec_runs, key=lambda r: r["member_epochs_per_s"])
    proc = max(proc_runs, key=lambda r: r["member_epochs_per_s"])
    vec["seconds_all_runs"] = {t: [r.get("seconds") for r in vec_runs if r.get("torch_threads") == t]
                               for t in thread_counts}
    proc["seconds_all_runs"] = [r.get("seconds", r.get("error")) for r in proc_runs]
    scaling = [in_fresh_process("vectorized", n, epochs, threads=vec.get("torch_threads", 1))
               for n in ((128,) if args.quick else (128, 512))]
    print(json.dumps({
        "benchmark": "vectorized",
        "model": "digits MLP 64-128-10, SGD, batch 64, PBT(interval=4), eval every epoch",
        "population": 32,
        "epochs": epochs,
        "quick": args.quick,
        "repeat": repeat,
        "member_epochs_per_s_vectorized": vec["member_epochs_per_s"],
        "member_epochs_per_s_processes": proc["member_epochs_per_s"],
        "speedup": (round(vec["member_epochs_per_s"] / proc["member_epochs_per_s"], 2)
                    if proc["member_epochs_per_s"] else None),
        "vectorized": vec,
        "processes": {**proc, "executor": "local"},
        "scaling": scaling,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
    }))


if __name__ == "__main__":
    main()
