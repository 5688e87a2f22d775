"""A compact HTML summary of a result, for Jupyter (``Result._repr_html_``).

No plotting library is needed: a few lines of text and two small tables.
"""

from __future__ import annotations

import html
from typing import Any

from poptrain.reporting.data import NothingToReport, field_of, population
from poptrain.reporting.tables import html_table, member_rows, schedule_rows

_STYLE = ("<style>.poptrain-summary table{border-collapse:collapse;font-size:12px;margin:4px 0}"
          ".poptrain-summary th,.poptrain-summary td{border:1px solid #ddd;padding:2px 6px;text-align:right}"
          ".poptrain-summary tr.best td{background:#fff4cc}</style>")


def summary_html(result: Any, *, max_members: int = 10) -> str:
    """Experiment, best member, its schedule and the top ``max_members`` members as HTML."""
    experiment = field_of(result, "experiment") or {}
    name = html.escape(str(experiment.get("name", "")))
    try:
        pop = population(result)
    except NothingToReport as exc:
        return f'<div class="poptrain-summary"><b>poptrain · {name}</b>: {html.escape(str(exc))}</div>'
    status = field_of(result, "status")
    best = pop.best or {}
    head = (f"<b>poptrain · {name}</b> — {html.escape(str(status)) + ' · ' if status else ''}"
            f"{len(pop.members)} members · metric {html.escape(pop.metric)} ({html.escape(pop.mode)}) · "
            f"{len(pop.lineage)} exploits")
    if best:
        score = best.get("score")
        score_text = f"{score:.6g}" if isinstance(score, float) else str(score)
        head += (f"<br>best: member {html.escape(str(best.get('member')))}, {html.escape(pop.metric)} "
                 f"<b>{html.escape(score_text)}</b> at step {html.escape(str(best.get('step')))}")
    rows = member_rows(pop)
    more = len(rows) - max_members
    parts = [_STYLE, '<div class="poptrain-summary">', f"<p>{head}</p>",
             "<details open><summary>best schedule</summary>",
             html_table(schedule_rows(pop), table_id="poptrain-schedule", key="", empty="no best member yet"),
             "</details><details><summary>members</summary>",
             html_table(rows[:max_members], table_id="poptrain-members", highlight=best.get("member")),
             f"<p>… and {more} more</p>" if more > 0 else "",
             "</details></div>"]
    return "".join(parts)
