"""The plots, as plain plotly figure dicts built from a :class:`Population`.

Dicts rather than ``plotly.graph_objects`` figures because the report and the
dashboard only serialise them: building hundreds of validated trace objects
for a large population costs seconds, a dict costs nothing. The notebook
helpers in ``poptrain.reporting.plots`` wrap the same dicts in ``go.Figure``.

Lines use SVG ``scatter`` traces grouped by ancestor (one trace per original
member, segments separated by gaps) instead of WebGL: a page of many WebGL
plots runs out of contexts, and browsers without a GPU log errors for them.
"""

from __future__ import annotations

import colorsys
import math
from collections import defaultdict
from typing import Any

from poptrain.reporting.data import Population, downsample, finite, flatten, lineage_edges
from poptrain.reporting.diversity import diversity

_QUALITATIVE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]
BEST_COLOR = "#111111"
#: Most points a figure draws per trace group before it thins the lines out.
POINT_BUDGET = 60_000


def ancestor_color(ancestor: int, population: int) -> str:
    """A stable colour per original member: the qualitative palette for small populations, hues beyond."""
    if population <= len(_QUALITATIVE):
        return _QUALITATIVE[ancestor % len(_QUALITATIVE)]
    # Golden-ratio hue steps keep neighbouring ids apart.
    hue = (ancestor * 0.618033988749895) % 1.0
    light = 0.42 + 0.12 * ((ancestor // 7) % 2)
    r, g, b = colorsys.hls_to_rgb(hue, light, 0.65)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _population_size(pop: Population) -> int:
    return max(int(pop.experiment.get("population") or 0), len(pop.members),
               1 + max((int(s["member"]) for s in pop.segments.values()), default=0))


def _base_layout(title: str, **extra: Any) -> dict[str, Any]:
    layout = {
        "title": {"text": title},
        "template": "plotly_white",
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"title": {"text": "descends from"}},
    }
    layout.update(extra)
    return layout


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def scores_figure(pop: Population, *, budget: int = POINT_BUDGET) -> dict[str, Any]:
    """Score against step for every member, coloured by ancestor, with each exploit marked.

    A segment that starts with an exploit is drawn from the donor's point at
    the copied step, so every line visibly branches off the line it copied.
    The best member's line of descent is drawn on top in black.
    """
    n = _population_size(pop)
    total = sum(len(p) for p in pop.points.values()) or 1
    per_segment_limit = None
    if total > budget:
        per_segment_limit = max(2, int(budget / max(1, len(pop.points))))
    groups: dict[int, dict[str, list]] = defaultdict(lambda: {"x": [], "y": [], "c": []})
    for sid, seg in sorted(pop.segments.items()):
        pts = list(pop.points.get(sid) or [])
        if per_segment_limit:
            pts = downsample(pts, per_segment_limit)
        parent = seg.get("parent")
        if parent is not None and int(parent) in pop.segments:
            start = int(seg.get("start_step") or 0)
            branch = pop.score_at(int(parent), start)
            if branch is not None:
                pts = [(start, branch)] + pts
        if not pts:
            continue
        g = groups[pop.ancestor.get(sid, int(seg["member"]))]
        g["x"].extend([p[0] for p in pts] + [None])
        g["y"].extend([p[1] for p in pts] + [None])
        g["c"].extend([int(seg["member"])] * len(pts) + [None])
    traces: list[dict[str, Any]] = []
    for anc in sorted(groups):
        g = groups[anc]
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"member {anc}", "legendgroup": f"a{anc}",
            "x": g["x"], "y": g["y"], "customdata": g["c"], "connectgaps": False,
            "line": {"color": ancestor_color(anc, n), "width": 1.3},
            "hovertemplate": "member %{customdata}<br>step %{x}<br>" + pop.metric + " %{y:.4g}<extra></extra>",
        })
    ex, ey, etext = [], [], []
    for e in lineage_edges(pop):
        sid = e.get("segment")
        parent = e.get("parent_segment")
        step = e.get("donor_step") if e.get("donor_step") is not None else e.get("step")
        if step is None:
            continue
        y = pop.score_at(int(parent), int(step)) if parent is not None else None
        if y is None and sid is not None:
            pts = pop.points.get(int(sid)) or []
            y = pts[0][1] if pts else None
        ex.append(int(step))
        ey.append(y)
        etext.append(f"member {e.get('member')} copied member {e.get('donor')} at step {step}")
    if ex:
        traces.append({
            "type": "scatter", "mode": "markers", "name": "exploit", "x": ex, "y": ey, "text": etext,
            "marker": {"symbol": "triangle-up", "size": 7, "color": "rgba(0,0,0,0.55)"},
            "hovertemplate": "%{text}<extra></extra>",
        })
    bx, by = _best_line(pop, per_segment_limit)
    if bx:
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"best (member {pop.best['member']})",
            "x": bx, "y": by, "line": {"color": BEST_COLOR, "width": 3},
            "hovertemplate": "best line<br>step %{x}<br>" + pop.metric + " %{y:.4g}<extra></extra>",
        })
    return {"data": traces, "layout": _base_layout(
        f"{pop.metric} by step ({pop.mode})", xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": pop.metric}})}


def _best_line(pop: Population, limit: int | None) -> tuple[list, list]:
    xs: list = []
    ys: list = []
    for sid, lo, hi in pop.best_chain():
        pts = [(s, v) for s, v in pop.points.get(sid) or [] if lo < s <= hi]
        if limit:
            pts = downsample(pts, limit)
        if xs:  # join each piece to the line it branched from
            branch = pop.score_at(sid, lo)
            if branch is not None:
                pts = [(lo, branch)] + pts
        xs.extend(p[0] for p in pts)
        ys.extend(p[1] for p in pts)
    return xs, ys


def _is_log(pop: Population, name: str, values: list[Any]) -> bool:
    dim = pop.dimensions.get(name)
    if dim is not None:
        return bool(getattr(dim, "log", False))
    nums = [finite(v) for v in values]
    if not nums or any(x is None for x in nums) or any(isinstance(v, (bool, str)) for v in values):
        return False
    lo, hi = min(nums), max(nums)  # type: ignore[type-var]
    return lo > 0 and hi / lo > 100


def schedules_figure(pop: Population) -> dict[str, Any]:
    """Each hyperparameter against step for every member (one panel each), the best schedule in black."""
    n = _population_size(pop)
    params = pop.params or ["(no hyperparameters)"]
    rows = len(params)
    gap = 0.06 if rows > 1 else 0.0
    height = (1.0 - gap * (rows - 1)) / rows
    layout = _base_layout("hyperparameter schedules", height=max(320, 230 * rows), showlegend=True)
    traces: list[dict[str, Any]] = []
    best_schedule = (pop.best or {}).get("schedule") or []
    for r, name in enumerate(params):
        axis = "" if r == 0 else str(r + 1)
        top = 1.0 - r * (height + gap)
        groups: dict[int, dict[str, list]] = defaultdict(lambda: {"x": [], "y": [], "c": []})
        values = []
        for sid, seg in sorted(pop.segments.items()):
            v = flatten(seg.get("config")).get(name)
            if v is None:
                continue
            values.append(v)
            g = groups[pop.ancestor.get(sid, int(seg["member"]))]
            g["x"].extend([int(seg.get("start_step") or 0), pop.segment_end(seg), None])
            g["y"].extend([v, v, None])
            g["c"].extend([int(seg["member"])] * 2 + [None])
        for anc in sorted(groups):
            g = groups[anc]
            traces.append({
                "type": "scatter", "mode": "lines", "name": f"member {anc}", "legendgroup": f"a{anc}",
                "showlegend": r == 0, "x": g["x"], "y": g["y"], "customdata": g["c"],
                "xaxis": f"x{axis}", "yaxis": f"y{axis}", "connectgaps": False,
                "line": {"color": ancestor_color(anc, n), "width": 1.2}, "opacity": 0.75,
                "hovertemplate": "member %{customdata}<br>step %{x}<br>" + name + " %{y}<extra></extra>",
            })
        bx, by = [], []
        for piece in best_schedule:
            v = flatten(piece.get("config")).get(name)
            bx.extend([piece.get("start_step"), piece.get("end_step")])
            by.extend([v, v])
        if bx:
            traces.append({
                "type": "scatter", "mode": "lines", "name": "best schedule", "legendgroup": "best",
                "showlegend": r == 0, "x": bx, "y": by, "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                "line": {"color": BEST_COLOR, "width": 3},
                "hovertemplate": "best schedule<br>step %{x}<br>" + name + " %{y}<extra></extra>",
            })
        yaxis: dict[str, Any] = {"title": {"text": name}, "domain": [max(0.0, top - height), top],
                                 "anchor": f"x{axis}"}
        if _is_log(pop, name, values):
            yaxis["type"] = "log"
        layout[f"yaxis{axis}"] = yaxis
        xaxis: dict[str, Any] = {"anchor": f"y{axis}"}
        if r > 0:
            xaxis["matches"] = "x"
        if r == rows - 1:
            xaxis["title"] = {"text": "step"}
        layout[f"xaxis{axis}"] = xaxis
    return {"data": traces, "layout": layout}


def lineage_figure(pop: Population) -> dict[str, Any]:
    """The lineage tree: members × step, a bar per segment, an edge per exploit (donor → member)."""
    n = _population_size(pop)
    groups: dict[int, dict[str, list]] = defaultdict(lambda: {"x": [], "y": [], "t": []})
    for sid, seg in sorted(pop.segments.items()):
        m = int(seg["member"])
        g = groups[pop.ancestor.get(sid, m)]
        cfg = ", ".join(f"{k}={_fmt(v)}" for k, v in flatten(seg.get("config")).items())
        text = f"member {m}, segment {sid}<br>{cfg}"
        g["x"].extend([int(seg.get("start_step") or 0), pop.segment_end(seg), None])
        g["y"].extend([m, m, None])
        g["t"].extend([text, text, None])
    traces: list[dict[str, Any]] = []
    for anc in sorted(groups):
        g = groups[anc]
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"member {anc}", "legendgroup": f"a{anc}",
            "x": g["x"], "y": g["y"], "text": g["t"], "connectgaps": False,
            "line": {"color": ancestor_color(anc, n), "width": 4},
            "hovertemplate": "%{text}<br>step %{x}<extra></extra>",
        })
    ex, ey, et = [], [], []
    for e in lineage_edges(pop):
        step = e.get("donor_step") if e.get("donor_step") is not None else e.get("step")
        if step is None or e.get("donor") is None:
            continue
        ex.extend([int(step), int(step), None])
        ey.extend([int(e["donor"]), int(e["member"]), None])
        text = f"member {e['member']} copied member {e['donor']} at step {step}"
        et.extend([text, text, None])
    if ex:
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": "exploit", "x": ex, "y": ey, "text": et,
            "line": {"color": "rgba(60,60,60,0.45)", "width": 1},
            "marker": {"size": 4, "color": "rgba(60,60,60,0.7)"},
            "hovertemplate": "%{text}<extra></extra>",
        })
    bx, by = [], []
    for sid, lo, hi in pop.best_chain():
        m = int(pop.segments[sid]["member"])
        bx.extend([lo, hi])
        by.extend([m, m])
    if bx:
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"best's ancestry (member {pop.best['member']})",
            "x": bx, "y": by, "line": {"color": BEST_COLOR, "width": 2, "dash": "dot"},
            "hovertemplate": "best's ancestry<br>member %{y}, step %{x}<extra></extra>",
        })
    members = _population_size(pop)
    return {"data": traces, "layout": _base_layout(
        "lineage (an edge for each exploit: donor → member)",
        height=max(360, min(1400, 18 * members + 120)),
        xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": "member"}, "autorange": "reversed", "dtick": 1 if members <= 40 else None})}


def diversity_figure(pop: Population, div: dict[str, Any] | None = None) -> dict[str, Any]:
    """Surviving ancestors (top) and hyperparameter spread in unit coordinates (bottom) by step."""
    div = div if div is not None else diversity(pop)
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "surviving ancestors", "x": div["step"],
         "y": div["ancestors"], "line": {"color": "#d62728", "width": 2},
         "hovertemplate": "step %{x}<br>%{y} ancestors survive<extra></extra>"},
        {"type": "scatter", "mode": "lines", "name": "members alive", "x": div["step"], "y": div["alive"],
         "line": {"color": "#999999", "width": 1, "dash": "dot"},
         "hovertemplate": "step %{x}<br>%{y} members<extra></extra>"},
    ]
    for i, (name, ys) in enumerate(div["spread"].items()):
        kind = div["spread_kind"].get(name, "")
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"{name} ({kind})", "x": div["step"], "y": ys,
            "xaxis": "x2", "yaxis": "y2", "line": {"color": _QUALITATIVE[i % len(_QUALITATIVE)], "width": 1.5},
            "hovertemplate": f"{name}<br>step %{{x}}<br>spread %{{y:.3f}}<extra></extra>",
        })
    layout = _base_layout(
        "population diversity", height=560,
        xaxis={"anchor": "y", "matches": "x2", "showticklabels": False},
        yaxis={"title": {"text": "ancestors"}, "domain": [0.56, 1.0], "rangemode": "tozero"},
        xaxis2={"anchor": "y2", "title": {"text": "step"}},
        yaxis2={"title": {"text": "spread (unit coords)"}, "domain": [0.0, 0.44], "rangemode": "tozero"},
    )
    layout["legend"] = {"title": {"text": ""}}
    return {"data": traces, "layout": layout}


def all_figures(pop: Population, div: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every figure of the report by name, in the order the report shows them."""
    return {
        "scores": scores_figure(pop),
        "schedules": schedules_figure(pop),
        "lineage": lineage_figure(pop),
        "diversity": diversity_figure(pop, div),
    }


def nan_free(value: Any) -> Any:
    """Replace NaN/inf floats by None in a figure dict (strict JSON, and plotly draws a gap)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: nan_free(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_free(v) for v in value]
    return value
