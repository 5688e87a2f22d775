"""A made-up PBT run in the shapes ``poptrain.results.load_result`` returns.

For benchmarks and tests of the views: it exercises every record the plots
read (segments, exploit events, nested configs, a categorical choice, a
log-scaled float) without training anything. Scores follow a simple rule: a
member improves faster the closer its learning rate is to ``1e-2``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: A constant every config carries (not tunable), as real spaces often have.
EPOCHS = 100


def space_json() -> dict[str, Any]:
    """The synthetic run's search space, as storage keeps it."""
    from poptrain.space import Choice, Float, Space

    return Space({"lr": Float(1e-4, 1.0, log=True), "opt": {"momentum": Float(0.0, 0.99)},
                  "act": Choice(["relu", "tanh", "gelu"]), "epochs": EPOCHS}).to_json()


def synthetic_result(members: int = 8, steps: int = 40, *, interval: int = 5, seed: int = 0,
                     name: str = "synthetic", metric: str = "score", mode: str = "max") -> dict[str, Any]:
    """A finished run of ``members`` members trained for ``steps`` steps each.

    At every ``interval`` steps the bottom quarter copies a random member of
    the top quarter and perturbs its config. Returned as a dict with the
    fields of a ``Result``: experiment, members, history, segments, lineage, best.
    """
    rng = np.random.default_rng(seed)
    sign = 1.0 if mode == "max" else -1.0
    cfg = []
    for _ in range(members):
        cfg.append({
            "lr": float(10 ** rng.uniform(-4, 0)),
            "opt": {"momentum": float(rng.uniform(0, 0.99))},
            "act": str(rng.choice(["relu", "tanh", "gelu"])),
            "epochs": EPOCHS,
        })
    value = [0.0] * members
    seg_of = list(range(1, members + 1))
    segments: dict[int, dict[str, Any]] = {
        i + 1: {"segment": i + 1, "member": i, "parent": None, "start_step": 0, "end_step": None,
                "config": cfg[i], "donor": None, "donor_step": None}
        for i in range(members)
    }
    next_seg = members + 1
    history: list[dict[str, Any]] = []
    lineage: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        for m in range(members):
            gain = math.exp(-((math.log10(cfg[m]["lr"]) + 2) ** 2)) * (1 + 0.3 * cfg[m]["opt"]["momentum"])
            value[m] += gain + 0.05 * float(rng.normal())
            history.append({"member": m, "segment": seg_of[m], "step": step,
                            "metrics": {metric: sign * value[m], "loss": 1.0 / (1.0 + abs(value[m]))}})
        if step % interval == 0 and step < steps:
            order = sorted(range(members), key=lambda i: value[i], reverse=True)
            q = max(1, members // 4)
            top, bottom = order[:q], order[-q:]
            for m in bottom:
                if m in top:
                    continue
                donor = int(rng.choice(top))
                old = cfg[m]
                new = {
                    "lr": float(min(1.0, max(1e-4, cfg[donor]["lr"] * float(rng.choice([0.8, 1.2]))))),
                    "opt": {"momentum": float(min(0.99, cfg[donor]["opt"]["momentum"] * float(rng.choice([0.8, 1.2]))))},
                    "act": cfg[donor]["act"] if rng.random() > 0.2 else str(rng.choice(["relu", "tanh", "gelu"])),
                    "epochs": EPOCHS,
                }
                segments[seg_of[m]]["end_step"] = step
                segments[next_seg] = {"segment": next_seg, "member": m, "parent": seg_of[donor],
                                      "start_step": step, "end_step": None, "config": new,
                                      "donor": donor, "donor_step": step}
                lineage.append({"member": m, "step": step, "donor": donor, "donor_step": step,
                                "old_config": old, "new_config": new, "segment": next_seg,
                                "parent_segment": seg_of[donor]})
                cfg[m] = new
                value[m] = value[donor]
                seg_of[m] = next_seg
                next_seg += 1
    for m in range(members):
        segments[seg_of[m]]["end_step"] = steps
    member_rows = [{"member": m, "step": steps, "score": sign * value[m], "config": cfg[m],
                    "state": "done", "segment": seg_of[m]} for m in range(members)]
    best_m = max(range(members), key=lambda i: value[i])
    chain = []
    node: int | None = seg_of[best_m]
    until = steps
    while node is not None:
        s = segments[node]
        chain.append({"start_step": s["start_step"], "end_step": until, "config": s["config"], "donor": s["donor"]})
        until = s["start_step"]
        node = s["parent"]
    chain.reverse()
    return {
        "experiment": {"name": name, "space": space_json(), "strategy": {"name": "synthetic"}, "metric": metric,
                       "mode": mode, "population": members, "budget": steps, "seed": seed},
        "members": member_rows,
        "history": history,
        "segments": [segments[k] for k in sorted(segments)],
        "lineage": lineage,
        "best": {"member": best_m, "score": sign * value[best_m], "step": steps, "config": cfg[best_m],
                 "schedule": chain},
    }
