"""How varied the population is over time.

Two measures, both on a grid of steps:

* **surviving ancestors** — the number of distinct original members that the
  segments alive at a step descend from. It starts at the population size and
  drops as exploits copy the winners over the losers; 1 means every member now
  descends from the same original member.
* **hyperparameter spread** — per hyperparameter, how far apart the members'
  values are, in the unit coordinates of the search space (so a log-scaled
  learning rate is measured in decades, not in raw values): the standard
  deviation of the unit values across members, in ``[0, 0.5]``. For an
  unordered choice it is the normalised entropy of the values instead, in
  ``[0, 1]`` (0: all members agree).

At a given step the *alive* segment of a member is the latest one it began
that covers that step, i.e. ``start_step < step <= end_step``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

import numpy as np

from poptrain.reporting.data import Population, finite, flatten, step_grid


def _space_units(pop: Population) -> dict[str, tuple[str, Callable[[Any], float]]]:
    """``name → (kind, to_unit)`` from the experiment's search space."""
    out: dict[str, tuple[str, Callable[[Any], float]]] = {}
    for name, dim in pop.dimensions.items():
        kind = "choice" if type(dim).__name__ == "Choice" else "numeric"
        out[name] = (kind, dim.to_unit)
    return out


def _observed_units(values: list[Any]) -> tuple[str, Callable[[Any], float]]:
    """A unit mapping from the values seen, for when the space cannot be read.

    Positive values spanning more than a decade are placed on a log scale, as
    a search space would have declared them.
    """
    nums = [finite(v) for v in values if not isinstance(v, (str, bool)) and v is not None]
    if len(nums) != len(values) or any(n is None for n in nums):
        return "choice", lambda v: math.nan
    lo, hi = min(nums), max(nums)  # type: ignore[type-var]
    log = lo > 0 and hi / lo > 10
    if log:
        lo, hi = math.log(lo), math.log(hi)
    span = hi - lo

    def unit(v: Any) -> float:
        x = finite(v)
        if x is None:
            return math.nan
        if log:
            if x <= 0:
                return math.nan
            x = math.log(x)
        return 0.5 if span == 0 else (x - lo) / span

    return "numeric", unit


def _entropy(values: list[Any]) -> float:
    counts = Counter(repr(v) for v in values)
    if len(counts) <= 1:
        return 0.0
    n = len(values)
    h = -sum(c / n * math.log(c / n) for c in counts.values())
    return h / math.log(min(n, len(counts))) if min(n, len(counts)) > 1 else 0.0


def diversity(pop: Population, *, points: int = 200) -> dict[str, Any]:
    """Surviving ancestors and hyperparameter spread on a grid of at most ``points`` steps.

    Returns:
        ``{"step": [...], "ancestors": [...], "alive": [...], "spread": {name: [...]},
        "spread_kind": {name: "std of unit value" | "normalised entropy"}}``;
        ``alive`` is the number of members that had reached the step.
    """
    grid = step_grid(pop.max_step, points)
    segs = sorted(pop.segments.values(), key=lambda s: int(s["segment"]))
    out: dict[str, Any] = {"step": grid, "ancestors": [], "alive": [], "spread": {}, "spread_kind": {}}
    if not grid or not segs:
        return out
    member = np.array([int(s["member"]) for s in segs])
    start = np.array([int(s.get("start_step") or 0) for s in segs])
    end = np.array([pop.segment_end(s) for s in segs])
    anc = np.array([pop.ancestor.get(int(s["segment"]), int(s["member"])) for s in segs])
    flat = [flatten(s.get("config")) for s in segs]

    from_space = _space_units(pop)
    unit_cols: dict[str, np.ndarray] = {}
    raw_cols: dict[str, list[Any]] = {}
    for name in pop.params:
        column = [f.get(name) for f in flat]
        kind, to_unit = from_space.get(name) or _observed_units([v for v in column if v is not None])
        if kind == "choice":
            raw_cols[name] = column
            out["spread_kind"][name] = "normalised entropy"
        else:
            unit_cols[name] = np.array([_safe_unit(to_unit, v) for v in column], dtype=float)
            out["spread_kind"][name] = "std of unit value"
        out["spread"][name] = []

    for step in grid:
        mask = (start < step) & (end >= step)
        idx = np.nonzero(mask)[0]
        if idx.size:
            # The latest segment of each member: ids ascend, so keep each member's last index.
            rev = idx[::-1]
            _, first = np.unique(member[rev], return_index=True)
            idx = rev[first]
        out["alive"].append(int(idx.size))
        out["ancestors"].append(int(np.unique(anc[idx]).size) if idx.size else 0)
        for name, col in unit_cols.items():
            vals = col[idx]
            vals = vals[~np.isnan(vals)]
            out["spread"][name].append(float(vals.std()) if vals.size else None)
        for name, col in raw_cols.items():
            vals = [col[i] for i in idx if col[i] is not None]
            out["spread"][name].append(_entropy(vals) if vals else None)
    return out


def _safe_unit(to_unit: Callable[[Any], float], value: Any) -> float:
    if value is None:
        return math.nan
    try:
        u = float(to_unit(value))
    except Exception:  # a value outside the space (an older run) is left out, not fatal
        return math.nan
    return u if math.isfinite(u) else math.nan
