"""The population as the plots see it, computed from a finished or running result.

Everything here works on the plain records ``poptrain.results.load_result``
returns (dicts and lists), so it can be tested without a storage and reused
by the report, the dashboard and the notebook helpers alike. No plotting
library is imported here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from poptrain.errors import PoptrainError


class NothingToReport(PoptrainError):
    """The experiment exists but has not trained a single step yet."""


def field_of(result: Any, name: str, default: Any = None) -> Any:
    """``result.name`` or ``result[name]``: results may be objects or plain dicts."""
    if isinstance(result, Mapping):
        return result.get(name, default)
    return getattr(result, name, default)


def flatten(config: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A nested config as one level with dotted keys (``{"opt": {"lr": 1}}`` → ``{"opt.lr": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or infinite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def json_safe(value: Any) -> Any:
    """A deep copy in which NaN and infinities are None, so that strict JSON parsers accept it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return value


def space_dimensions(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """The tunable dimensions of the experiment's stored space by dotted name, or {} if unreadable."""
    spec = experiment.get("space")
    if not spec:
        return {}
    try:
        from poptrain.space import Space

        space = Space.from_json(spec)
    except Exception:  # a space this version cannot read costs the normalisation, never the report
        return {}
    return {".".join(path): dim for path, dim in space.dimensions.items()}


def segment_ancestors(segments: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """For every segment id, the original member its chain of parents starts from.

    A segment without a parent is a member's first; its member is the ancestor.
    A parent that is missing from the records (or a cycle, which storage should
    never hold) ends the walk at the segment reached so far.
    """
    by_id = {int(s["segment"]): s for s in segments}
    ancestor: dict[int, int] = {}
    for start in by_id:
        path = []
        seen = set()
        node: int | None = start
        root = None
        while node is not None and node in by_id and node not in seen:
            if node in ancestor:
                root = ancestor[node]
                break
            seen.add(node)
            path.append(node)
            parent = by_id[node].get("parent")
            if parent is None or int(parent) not in by_id:
                root = int(by_id[node]["member"])
                break
            node = int(parent)
        if root is None:  # cycle: fall back to the member of the last segment visited
            root = int(by_id[path[-1]]["member"])
        for seg in path:
            ancestor[seg] = root
    return ancestor


@dataclass
class Population:
    """The records of one experiment, indexed for plotting.

    Attributes:
        experiment: the experiment's definition (name, space, metric, mode, ...).
        metric: the name of the metric that ranks members.
        mode: ``"max"`` or ``"min"``.
        members: one dict per member (member, step, score, config, state, segment).
        segments: segment id → segment record.
        lineage: exploit events, in the order storage gives them.
        best: the best member's record with its schedule, or None.
        ancestor: segment id → the original member it descends from.
        points: segment id → ``[(step, score), ...]`` sorted by step.
        params: the tunable hyperparameters by dotted name: the search space's
            dimensions, or every config key when the space cannot be read.
        dimensions: dotted name → ``poptrain.space`` dimension (empty when the
            stored space cannot be read).
    """

    experiment: dict[str, Any]
    metric: str
    mode: str
    members: list[dict[str, Any]]
    segments: dict[int, dict[str, Any]]
    lineage: list[dict[str, Any]]
    best: dict[str, Any] | None
    history: list[dict[str, Any]]
    ancestor: dict[int, int] = field(default_factory=dict)
    points: dict[int, list[tuple[int, float | None]]] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    dimensions: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.experiment.get("name", ""))

    @property
    def max_step(self) -> int:
        steps = [int(h["step"]) for h in self.history]
        steps += [int(m.get("step") or 0) for m in self.members]
        return max(steps, default=0)

    def segment_end(self, seg: Mapping[str, Any]) -> int:
        """The last step a segment covers (its recorded end, or the last step trained in it)."""
        end = seg.get("end_step")
        if end is not None:
            return int(end)
        pts = self.points.get(int(seg["segment"]))
        last = pts[-1][0] if pts else int(seg.get("start_step") or 0)
        for m in self.members:
            if m.get("segment") == seg["segment"] and m.get("step") is not None:
                last = max(last, int(m["step"]))
        return last

    def score_at(self, segment_id: int, step: int) -> float | None:
        """The score a segment had at ``step`` (or at the last step before it), if any."""
        pts = self.points.get(segment_id) or []
        best = None
        for s, v in pts:
            if s <= step:
                best = v
            else:
                break
        if best is None:
            seg = self.segments.get(segment_id)
            if seg and seg.get("parent") is not None and int(seg.get("start_step") or 0) >= step:
                return self.score_at(int(seg["parent"]), step)
        return best

    def best_chain(self) -> list[tuple[int, int, int]]:
        """The best member's line of descent as ``(segment, from_step, to_step)``, oldest first.

        Each piece covers the steps its segment contributed to the best weights:
        a donor's segment only up to the step its weights were copied at.
        """
        if not self.best:
            return []
        member = self.best.get("member")
        current = None
        for m in self.members:
            if m.get("member") == member:
                current = m.get("segment")
        if current is None:
            mine = [sid for sid, s in self.segments.items() if s.get("member") == member]
            current = max(mine) if mine else None
        chain: list[tuple[int, int, int]] = []
        seen = set()
        until = int(self.best.get("step") or self.max_step)
        node = current
        while node is not None and node in self.segments and node not in seen:
            seen.add(node)
            seg = self.segments[node]
            start = int(seg.get("start_step") or 0)
            chain.append((node, start, min(until, self.segment_end(seg))))
            until = start
            node = seg.get("parent")
            node = int(node) if node is not None else None
        chain.reverse()
        return chain


def population(result: Any) -> Population:
    """Index a result's records for plotting.

    Raises:
        NothingToReport: the experiment has not trained a single step yet.
    """
    experiment = dict(field_of(result, "experiment") or {})
    members = [dict(m) for m in field_of(result, "members") or []]
    history = [dict(h) for h in field_of(result, "history") or []]
    segments = {int(s["segment"]): dict(s) for s in field_of(result, "segments") or []}
    lineage = [dict(e) for e in field_of(result, "lineage") or []]
    best = field_of(result, "best")
    best = dict(best) if best else None
    name = experiment.get("name", "")
    if not history:
        raise NothingToReport(f"Experiment '{name}' has not trained any step yet; there is nothing to show.")
    metric = str(experiment.get("metric") or "score")
    mode = str(experiment.get("mode") or "max")

    # A history row whose segment storage does not list still gets a segment,
    # so that no trained step disappears from the plots.
    for h in history:
        sid = h.get("segment")
        if sid is None:
            continue
        sid = int(sid)
        if sid not in segments:
            segments[sid] = {
                "segment": sid, "member": h["member"], "parent": None,
                "start_step": 0, "end_step": None, "config": {}, "donor": None, "donor_step": None,
            }

    points: dict[int, list[tuple[int, float | None]]] = defaultdict(list)
    for h in history:
        if h.get("segment") is None:
            continue
        value = finite((h.get("metrics") or {}).get(metric))
        points[int(h["segment"])].append((int(h["step"]), value))
    for pts in points.values():
        pts.sort(key=lambda p: p[0])

    dimensions = space_dimensions(experiment)
    params: list[str] = list(dimensions)
    if not params:
        seen: set[str] = set()
        configs = [s.get("config") for s in segments.values()] + [m.get("config") for m in members]
        for cfg in configs:
            for key in flatten(cfg):
                if key not in seen:
                    seen.add(key)
                    params.append(key)

    pop = Population(
        experiment=experiment, metric=metric, mode=mode, members=members, segments=segments,
        lineage=lineage, best=best, history=history, points=dict(points), params=params,
        dimensions=dimensions,
    )
    pop.ancestor = segment_ancestors(segments.values())
    return pop


def lineage_edges(pop: Population) -> list[dict[str, Any]]:
    """One edge per exploit: from the donor at the step its weights had to the member.

    Built from the exploit events; a segment with a donor but no event (an
    older storage) still yields its edge.
    """
    edges = []
    covered = set()
    for e in pop.lineage:
        edges.append({
            "member": e.get("member"), "step": e.get("step"), "donor": e.get("donor"),
            "donor_step": e.get("donor_step"), "segment": e.get("segment"),
            "parent_segment": e.get("parent_segment"),
        })
        if e.get("segment") is not None:
            covered.add(int(e["segment"]))
    for sid, s in sorted(pop.segments.items()):
        if s.get("parent") is not None and s.get("donor") is not None and sid not in covered:
            edges.append({
                "member": s["member"], "step": s.get("start_step"), "donor": s["donor"],
                "donor_step": s.get("donor_step", s.get("start_step")), "segment": sid,
                "parent_segment": s["parent"],
            })
    return edges


def step_grid(max_step: int, points: int = 200) -> list[int]:
    """At most ``points`` steps from 1 to ``max_step``, always ending at ``max_step``."""
    if max_step <= 0:
        return []
    if max_step <= points:
        return list(range(1, max_step + 1))
    stride = max_step / points
    grid = sorted({max(1, int(round(stride * (i + 1)))) for i in range(points)})
    if grid[-1] != max_step:
        grid.append(max_step)
    return grid


def downsample(points: Sequence[tuple[int, Any]], limit: int) -> list[tuple[int, Any]]:
    """Keep at most ``limit`` points, always the first and the last."""
    n = len(points)
    if n <= limit or limit < 2:
        return list(points)
    stride = (n - 1) / (limit - 1)
    idx = sorted({int(round(i * stride)) for i in range(limit)})
    return [points[i] for i in idx]
