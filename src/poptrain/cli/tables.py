"""Human-readable tables for the terminal (rich)."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from poptrain.reporting.data import flatten
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


def lineage_rows(lineage: list[dict[str, Any]]) -> list[list[str]]:
    """One row per exploit: step, member, donor@donor_step, then ``old -> new`` for every explored key."""
    rows = []
    for e in lineage:
        old, new = flatten(e["old_config"]), flatten(e["new_config"])
        changes = [f"{k}: {_cfg(old.get(k))} -> {_cfg(v)}" for k, v in new.items() if old.get(k) != v]
        rows.append([str(e["step"]), str(e["member"]), f"{e['donor']} @ {e['donor_step']}", "\n".join(changes) or "-"])
    return rows


def print_lineage(res: Result) -> None:
    console = Console()
    if not res.lineage:
        console.print(f"[bold]{res.name}[/]: no exploit yet")
        return
    t = Table(title=f"{res.name}: {len(res.lineage)} exploits")
    for col in ("step", "member", "copied from (member @ step)", "config (old -> new)"):
        t.add_column(col)
    for row in lineage_rows(res.lineage):
        t.add_row(*row)
    console.print(t)


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
