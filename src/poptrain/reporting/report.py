"""The self-contained HTML report.

One file that opens anywhere without a network: plotly.js is embedded, the
figures are plotly JSON drawn by a few lines of script, and the raw data is
embedded as ``<script type="application/json" id="poptrain-data">`` in the
format below, so that tests and users can parse it back.

Embedded data (``"format": "poptrain.report-data/1"``)::

    {
      "format": "poptrain.report-data/1",
      "experiment": {...},              # as stored: name, space, strategy, metric, mode, ...
      "members":  [{member, step, score, config, state, segment}, ...],
      "segments": [{segment, member, parent, start_step, end_step, config, donor, donor_step}, ...],
      "lineage":  [{member, step, donor, donor_step, segment, parent_segment}, ...],  # the exploit edges
      "best":     {member, score, step, config, schedule: [{start_step, end_step, config, donor}]},
      "history":  {"member": [...], "segment": [...], "step": [...], "metrics": {name: [...]}},
      "ancestors": {segment id: original member},
      "diversity": {"step": [...], "ancestors": [...], "alive": [...], "spread": {name: [...]}}
    }

``history`` is columnar (one list per field, aligned) to keep large reports
small. NaN and infinite values are written as ``null``.
"""

from __future__ import annotations

import functools
import html
import json
import time
from pathlib import Path
from typing import Any

from poptrain.reporting.data import Population, json_safe, lineage_edges, population
from poptrain.reporting.diversity import diversity
from poptrain.reporting.figures import all_figures, nan_free
from poptrain.reporting.tables import html_table, member_rows, schedule_rows

DATA_FORMAT = "poptrain.report-data/1"
FIGURE_TITLES = {
    "scores": "Score by step",
    "schedules": "Hyperparameter schedules",
    "lineage": "Lineage tree",
    "diversity": "Diversity",
}


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package (read once)."""
    from poptrain._optional import require

    require("plotly", feature="the HTML report")
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can appear)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def report_data(pop: Population, div: dict[str, Any]) -> dict[str, Any]:
    """The raw data the report embeds (see the module docstring for the format)."""
    names: list[str] = []
    for h in pop.history:
        for k in h.get("metrics") or {}:
            if k not in names:
                names.append(k)
    hist: dict[str, Any] = {"member": [], "segment": [], "step": [], "metrics": {k: [] for k in names}}
    for h in pop.history:
        hist["member"].append(h.get("member"))
        hist["segment"].append(h.get("segment"))
        hist["step"].append(h.get("step"))
        metrics = h.get("metrics") or {}
        for k in names:
            hist["metrics"][k].append(metrics.get(k))
    return json_safe({
        "format": DATA_FORMAT,
        "experiment": pop.experiment,
        "members": pop.members,
        "segments": [pop.segments[k] for k in sorted(pop.segments)],
        "lineage": lineage_edges(pop),
        "best": pop.best,
        "history": hist,
        "ancestors": {str(k): v for k, v in sorted(pop.ancestor.items())},
        "diversity": div,
    })


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1280px;padding:0 24px 48px;color:#222}
h1{font-size:1.6em;margin:24px 0 4px} h2{font-size:1.25em;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0 0 8px} .meta b{color:#222}
.figure{width:100%;min-height:360px}
table{border-collapse:collapse;font-size:13px;margin:8px 0;display:block;overflow-x:auto;max-height:560px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0} tr.best td{background:#fff4cc;font-weight:600}
nav a{margin-right:14px} .note{color:#666;font-size:13px}
"""

_DRAW = """
(function(){
  var figs = JSON.parse(document.getElementById('poptrain-figures').textContent);
  Object.keys(figs).forEach(function(name){
    var el = document.getElementById('fig-' + name);
    if (el) Plotly.newPlot(el, figs[name].data, figs[name].layout, {responsive: true, displaylogo: false});
  });
})();
"""


def _summary_line(pop: Population) -> str:
    exp = pop.experiment
    best = pop.best or {}
    parts = [
        f"metric <b>{html.escape(pop.metric)}</b> ({html.escape(pop.mode)})",
        f"population <b>{len(pop.members) or exp.get('population', '?')}</b>",
        f"budget <b>{html.escape(str(exp.get('budget', '?')))}</b> steps",
        f"<b>{len(pop.lineage)}</b> exploits",
    ]
    if best:
        parts.append(f"best: member <b>{html.escape(str(best.get('member')))}</b> with "
                     f"{html.escape(pop.metric)} <b>{html.escape(_num(best.get('score')))}</b>"
                     f" at step {html.escape(str(best.get('step')))}")
    return " · ".join(parts)


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def build_report(result: Any, *, storage_label: str | None = None) -> str:
    """The report over ``result`` as one HTML string.

    Args:
        result: a ``Result`` (or a dict with the same fields).
        storage_label: where the data came from, shown in the header; pass a
            URL through ``poptrain.reporting.urls.mask_url`` first.

    Raises:
        NothingToReport: the experiment has not trained any step yet.
    """
    pop = population(result)
    div = diversity(pop)
    figures = nan_free(all_figures(pop, div))
    data = report_data(pop, div)
    title = f"poptrain report — {pop.name}" if pop.name else "poptrain report"
    best_member = (pop.best or {}).get("member")
    sections = []
    for name, label in FIGURE_TITLES.items():
        sections.append(f'<h2 id="{name}">{label}</h2><div class="figure" id="fig-{name}"></div>')
    sections.insert(3, "<h2 id=\"members\">Members</h2>"
                    + html_table(member_rows(pop), table_id="members-table", highlight=best_member))
    sections.insert(4, "<h2 id=\"best-schedule\">Best schedule</h2>"
                    '<p class="note">The config the best weights were trained with, step by step '
                    "(following each exploit back to the donor it copied).</p>"
                    + html_table(schedule_rows(pop), table_id="schedule-table", key="",
                                 empty="no best member yet"))
    nav = " ".join(f'<a href="#{k}">{v}</a>' for k, v in
                   [("scores", "scores"), ("schedules", "schedules"), ("lineage", "lineage"),
                    ("members", "members"), ("best-schedule", "best schedule"), ("diversity", "diversity")])
    source = f" · from {html.escape(storage_label)}" if storage_label else ""
    return "".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title>",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<style>{_STYLE}</style>",
        f"<script>{plotly_js()}</script>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{_summary_line(pop)}</p>',
        f'<p class="note">generated {time.strftime("%Y-%m-%d %H:%M:%S")}{source}</p>',
        f"<nav>{nav}</nav>",
        *sections,
        f'<script type="application/json" id="poptrain-figures">{script_json(figures)}</script>',
        f'<script type="application/json" id="poptrain-data">{script_json(data)}</script>',
        f"<script>{_DRAW}</script>",
        "</body></html>",
    ])


def write_report(result: Any, path: str | Path, *, storage_label: str | None = None) -> Path:
    """Write :func:`build_report` to ``path`` (parent folders are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = build_report(result, storage_label=storage_label)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def read_report_data(text: str) -> dict[str, Any]:
    """Parse the embedded data back out of a report's HTML."""
    marker = '<script type="application/json" id="poptrain-data">'
    start = text.index(marker) + len(marker)
    end = text.index("</script>", start)
    return json.loads(text[start:end])
