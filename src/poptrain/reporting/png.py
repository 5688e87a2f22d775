"""The main plots as PNG files, for papers and notebooks.

Kaleido (plotly's own exporter, which drives a local Chromium) draws exactly
what the report shows; where it is missing or cannot start a browser, the
same figure dicts are drawn with matplotlib instead, so ``--png`` works on a
machine with either.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

from poptrain.reporting.data import population
from poptrain.reporting.diversity import diversity
from poptrain.reporting.figures import all_figures, nan_free

ENGINES = ("auto", "kaleido", "matplotlib")


def write_pngs(result: Any, out_dir: str | os.PathLike[str], *, engine: str = "auto",
               width: int = 1200, height: int | None = None) -> list[Path]:
    """Write ``scores.png``, ``schedules.png``, ``lineage.png`` and ``diversity.png`` to ``out_dir``.

    Args:
        engine: ``"kaleido"``, ``"matplotlib"``, or ``"auto"`` (kaleido, then matplotlib).

    Returns:
        The paths written.
    """
    from poptrain.errors import ConfigError

    if engine not in ENGINES:
        raise ConfigError(f"The 'engine' argument of write_pngs must be one of {ENGINES}; got {engine!r}.")
    pop = population(result)
    figures = nan_free(all_figures(pop, diversity(pop)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if engine in ("auto", "kaleido"):
        try:
            return _kaleido(figures, out, width, height)
        except Exception:
            if engine == "kaleido":
                raise
    return _matplotlib(figures, out, width, height)


def _kaleido(figures: dict[str, dict[str, Any]], out: Path, width: int, height: int | None) -> list[Path]:
    from poptrain._optional import require

    require("kaleido", feature="PNG export with kaleido")
    go = require("plotly.graph_objects", feature="PNG export")
    pio = require("plotly.io", feature="PNG export")
    if not os.environ.get("BROWSER_PATH"):
        # kaleido looks for Chrome; a distribution's Chromium serves as well.
        for name in ("chromium", "chromium-browser", "google-chrome"):
            found = shutil.which(name)
            if found:
                os.environ["BROWSER_PATH"] = found
                break
    paths = []
    for name, spec in figures.items():
        fig = go.Figure(spec)
        h = height or int(spec["layout"].get("height") or 560)
        path = out / f"{name}.png"
        pio.write_image(fig, str(path), format="png", width=width, height=h)
        paths.append(path)
    return paths


def _runs(xs: list, ys: list) -> list[tuple[list, list]]:
    """Split a trace at its None gaps into the runs matplotlib draws as separate lines."""
    runs, cx, cy = [], [], []
    for x, y in zip(xs, ys):
        if x is None or y is None:
            if cx:
                runs.append((cx, cy))
            cx, cy = [], []
        else:
            cx.append(x)
            cy.append(y)
    if cx:
        runs.append((cx, cy))
    return runs


def _matplotlib(figures: dict[str, dict[str, Any]], out: Path, width: int, height: int | None) -> list[Path]:
    from poptrain._optional import require

    matplotlib = require("matplotlib", feature="PNG export with matplotlib")
    matplotlib.use("Agg", force=False)
    plt = require("matplotlib.pyplot", feature="PNG export with matplotlib")
    paths = []
    for name, spec in figures.items():
        layout = spec["layout"]
        axes_ids = sorted({t.get("yaxis", "y") for t in spec["data"]} or {"y"},
                          key=lambda a: int(a[1:] or 1))
        h = (height or int(layout.get("height") or 560)) / 100
        fig, axes = plt.subplots(len(axes_ids), 1, figsize=(width / 100, h), sharex=True, squeeze=False)
        by_id = {a: axes[i][0] for i, a in enumerate(axes_ids)}
        for trace in spec["data"]:
            ax = by_id[trace.get("yaxis", "y")]
            color = (trace.get("line") or {}).get("color") or (trace.get("marker") or {}).get("color")
            color = _mpl_color(color)
            width_pt = float((trace.get("line") or {}).get("width", 1.0))
            label = trace.get("name") if trace.get("showlegend", True) else None
            mode = trace.get("mode", "lines")
            first = True
            for xs, ys in _runs(list(trace.get("x") or []), list(trace.get("y") or [])):
                kwargs = {"color": color, "label": label if first else None}
                if "lines" in mode:
                    ax.plot(xs, ys, linewidth=width_pt * 0.8, marker="^" if "markers" in mode else None,
                            markersize=3, **kwargs)
                else:
                    ax.scatter(xs, ys, s=12, marker="^", **kwargs)
                first = False
        for i, a in enumerate(axes_ids):
            ax = by_id[a]
            key = "yaxis" if a == "y" else f"yaxis{a[1:]}"
            yl = layout.get(key) or {}
            ax.set_ylabel(((yl.get("title") or {}).get("text")) or "")
            if yl.get("type") == "log":
                ax.set_yscale("log")
            if yl.get("autorange") == "reversed":
                ax.invert_yaxis()
            ax.grid(True, alpha=0.3)
        axes[-1][0].set_xlabel("step")
        axes[0][0].set_title((layout.get("title") or {}).get("text", name))
        handles, labels = axes[0][0].get_legend_handles_labels()
        if handles and len(handles) <= 30:
            axes[0][0].legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _mpl_color(color: Any) -> Any:
    """Plotly's ``rgba(r,g,b,a)`` strings as matplotlib tuples; other colours pass through."""
    if isinstance(color, str) and color.startswith("rgba("):
        r, g, b, a = (float(v) for v in color[5:-1].split(","))
        return (r / 255, g / 255, b / 255, a)
    if isinstance(color, float) and math.isnan(color):
        return None
    return color
