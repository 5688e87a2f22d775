"""Vectorized engine on a GPU vs. the local-process path: PBT on the digits MLP.

The comparison of ``bench/vectorized.py`` with the vectorized engine on CUDA
at populations 32 to 4096 (everything on the device; metrics copied to the host
once per ready point). The process arm is ``poptrain.run(..., executor="local")``
at population 32 with ``--workers`` workers (default 2), on the CPU by default
or each worker on the GPU with ``--process-device cuda``. ``speedup`` divides
each population's member-epochs per second by the process arm's.

    python bench/vectorized_gpu.py                 # needs a CUDA device
    python bench/vectorized_gpu.py --quick         # 4 epochs, populations 32, 512, 4096
    python bench/vectorized_gpu.py --device cpu --quick   # the same code on the CPU (a dry run)

Prints one JSON line; without a CUDA device it prints a JSON line saying so
and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vectorized as cpu_bench  # noqa: E402  (bench/vectorized.py: data, model, arms)

POPULATIONS = (32, 128, 512, 1024, 4096)
QUICK_POPULATIONS = (32, 512, 4096)


class DigitsMLPOnCuda(cpu_bench.DigitsMLP):
    """The process arm's trainable with its member on the GPU."""

    def __init__(self, config: dict) -> None:
        super().__init__(config)
        self.model.to("cuda")
        self.opt = torch.optim.SGD(self.model.parameters(), lr=config["lr"], momentum=config["momentum"],
                                   weight_decay=config["weight_decay"])
        self.gpu_data = tuple(t.to("cuda") for t in cpu_bench.data())

    def step(self) -> dict[str, float]:
        xt, yt, xv, yv = self.gpu_data
        order = torch.randperm(len(xt), generator=torch.Generator().manual_seed(self.epoch)).to("cuda")
        self.model.train()
        total = torch.zeros((), device="cuda")
        for i in range(0, len(xt), cpu_bench.BATCH_SIZE):
            idx = order[i:i + cpu_bench.BATCH_SIZE]
            self.opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(xt[idx]), yt[idx])
            loss.backward()
            self.opt.step()
            total += loss.detach() * len(idx)
        self.epoch += 1
        self.model.eval()
        with torch.no_grad():
            m = cpu_bench.accuracy(self.model(xv), yv)
        return {"accuracy": m["accuracy"].item(), "val_loss": m["val_loss"].item(),
                "train_loss": total.item() / len(xt)}


def run_processes_on_cuda(population: int, epochs: int, workers: int) -> dict:
    import tempfile
    import time

    import poptrain as pt
    from poptrain.algorithms import PBT

    with tempfile.TemporaryDirectory() as tmp:
        experiment = pt.Experiment(
            name="bench-digits-cuda", trainable=DigitsMLPOnCuda, space=cpu_bench.SPACE, metric="accuracy",
            mode="max", strategy=PBT(interval=cpu_bench.INTERVAL), population=population, budget=epochs, seed=0,
        )
        t0 = time.perf_counter()
        # The local executor forks its workers; this process never touches CUDA, so they can.
        result = pt.run(experiment, storage=f"sqlite:///{tmp}/bench.db", checkpoints=f"{tmp}/ckpt",
                        workers=workers, executor="local")
        seconds = time.perf_counter() - t0
    best = result.best or {}
    return {"population": population, "workers": workers, "seconds": round(seconds, 3),
            "member_epochs_per_s": round(population * epochs / seconds, 1),
            "best_accuracy": round(best["score"], 4) if best.get("score") is not None else None,
            "exploits": len(result.lineage)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 epochs; populations 32, 512, 4096")
    parser.add_argument("--device", default="cuda", help="device of the vectorized arm (default cuda)")
    parser.add_argument("--process-device", default="cpu", choices=["cpu", "cuda"],
                        help="where the process arm's workers train (default cpu)")
    parser.add_argument("--workers", type=int, default=2, help="process arm workers (default 2)")
    parser.add_argument("--populations", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="comma-separated populations of the vectorized arm")
    parser.add_argument("--arm", choices=["vectorized", "processes"], help=argparse.SUPPRESS)
    parser.add_argument("--population", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.arm == "processes":
        # Before anything touches CUDA here: the forked workers initialise it themselves.
        run = run_processes_on_cuda if args.process_device == "cuda" else cpu_bench.run_processes
        print(json.dumps(run(args.population, args.epochs, args.workers)))
        return
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"benchmark": "vectorized_gpu", "skipped": True,
                          "reason": f"no CUDA device (torch {torch.__version__}, "
                                    f"cuda build {torch.version.cuda}); run it on a machine with a GPU"}))
        return

    if args.arm == "vectorized":
        print(json.dumps(cpu_bench.run_vectorized(args.population, args.epochs, args.device)))
        return
    if args.arm == "processes":
        run = run_processes_on_cuda if args.process_device == "cuda" else cpu_bench.run_processes
        print(json.dumps(run(args.population, args.epochs, args.workers)))
        return

    epochs = 4 if args.quick else 20
    populations = args.populations or (QUICK_POPULATIONS if args.quick else POPULATIONS)
    here = os.path.abspath(__file__)

    def fresh(arm: str, population: int) -> dict:
        import subprocess

        cmd = [sys.executable, here, "--arm", arm, "--population", str(population), "--epochs", str(epochs),
               "--device", args.device, "--process-device", args.process_device, "--workers", str(args.workers)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    proc = fresh("processes", 32)
    runs = []
    for n in populations:
        try:
            r = fresh("vectorized", n)
        except Exception as exc:  # noqa: BLE001 - out of memory at a large population ends the sweep, not the report
            runs.append({"population": n, "error": str(exc)[-500:]})
            break
        r["speedup"] = round(r["member_epochs_per_s"] / proc["member_epochs_per_s"], 2)
        runs.append(r)
    first = next((r for r in runs if r.get("population") == 32 and "error" not in r), None)
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else None
    print(json.dumps({
        "benchmark": "vectorized_gpu",
        "model": "digits MLP 64-128-10, SGD, batch 64, PBT(interval=4), eval every epoch",
        "epochs": epochs,
        "quick": args.quick,
        "device": args.device,
        "gpu": gpu,
        "member_epochs_per_s_vectorized": first["member_epochs_per_s"] if first else None,
        "member_epochs_per_s_processes": proc["member_epochs_per_s"],
        "speedup": first["speedup"] if first else None,
        "best_speedup": max((r["speedup"] for r in runs if "speedup" in r), default=None),
        "processes": {**proc, "executor": "local", "device": args.process_device},
        "vectorized": runs,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
    }))


if __name__ == "__main__":
    main()
