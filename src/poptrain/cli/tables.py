"""Human-readable tables for the terminal (rich)."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from poptrain.results import Result


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.6g}"
    return str(x)


def _cfg(c: Any) -> str:
    return json.dumps(_short(c), default=repr, separators=(", ", ": "))


def _short(c: Any) -> Any:
    if isinstance(c, float):
        return float(f"{c:.4g}")
    if isinstance(c, dict):
        return {k: _short(v) for k, v in c.items()}
    return c


def print_status(res: Result) -> None:
    t = Table(title=f"{res.name} ({res.status})")
    for col in ("member", "step", "score", "state", "config"):
        t.add_column(col)
    for m in res.members:
        t.add_row(str(m["member"]), str(m["step"]), _fmt(m["score"]), m["state"], _cfg(m["config"]))
    Console().print(t)


def print_best(res: Result) -> None:
    console = Console()
    b = res.best
    if b is None:
        console.print(f"[bold]{res.name}[/]: no member has a usable score")
        return
    metric = res.experiment.get("metric")
    console.print(
        f"[bold]{res.name}[/] best: member {b['member']}  {metric} = {_fmt(b['score'])}  at step {b['step']}\n"
        f"config: {_cfg(b['config'])}"
    )
    t = Table(title="schedule of the best member")
    for col in ("steps", "trained by member", "copied from", "config"):
        t.add_column(col)
    for s in b["schedule"]:
        t.add_row(f"{s['start_step']}-{s['end_step']}", str(s["member"]), "-" if s["donor"] is None else str(s["donor"]), _cfg(s["config"]))
    console.print(t)
    console.print(f"{len(res.lineage)} exploits in the population; see `poptrain lineage`")
