"""The members table and the best schedule table, as rows and as HTML."""

from __future__ import annotations

import html
import math
from typing import Any, Sequence

from poptrain.reporting.data import Population, finite, flatten


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def member_rows(pop: Population) -> list[dict[str, Any]]:
    """One row per member, best first: id, state, step, score, ancestor, exploits, then the config."""
    exploits: dict[Any, int] = {}
    for e in pop.lineage:
        exploits[e.get("member")] = exploits.get(e.get("member"), 0) + 1
    rows = []
    for m in pop.members:
        seg = m.get("segment")
        row = {
            "member": m.get("member"),
            "state": m.get("state"),
            "step": m.get("step"),
            "score": finite(m.get("score")),
            "descends from": pop.ancestor.get(int(seg)) if seg is not None else None,
            "exploits": exploits.get(m.get("member"), 0),
        }
        row.update(flatten(m.get("config")))
        rows.append(row)
    sign = -1.0 if pop.mode == "max" else 1.0
    rows.sort(key=lambda r: (r["score"] is None, sign * (r["score"] or 0.0), r["member"]))
    return rows


def schedule_rows(pop: Population) -> list[dict[str, Any]]:
    """The best member's schedule: one row per segment of its line of descent."""
    rows = []
    for piece in (pop.best or {}).get("schedule") or []:
        row = {"from step": piece.get("start_step"), "to step": piece.get("end_step"),
               "copied from": piece.get("donor")}
        row.update(flatten(piece.get("config")))
        rows.append(row)
    return rows


def html_table(rows: Sequence[dict[str, Any]], *, table_id: str, highlight: Any = None,
               key: str = "member", empty: str = "nothing yet") -> str:
    """A plain HTML table; the row whose ``key`` equals ``highlight`` is marked ``class="best"``."""
    if not rows:
        return f'<p class="empty" id="{html.escape(table_id)}">{html.escape(empty)}</p>'
    columns: list[str] = []
    for r in rows:
        for c in r:
            if c not in columns:
                columns.append(c)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cls = ' class="best"' if highlight is not None and r.get(key) == highlight else ""
        cells = "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns)
        body.append(f"<tr{cls}>{cells}</tr>")
    return (f'<table id="{html.escape(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")
