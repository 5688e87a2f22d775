"""Diversity of a population: how many lineages survive, how spread the hyperparameters are, and a guard.

PBT copies winners over losers, so a population can collapse onto one
lineage and one config. Two measures show it from a run's records (plain
segment dicts, as :class:`poptrain.results.Result` holds them; nothing here
reads storage):

* :func:`surviving_ancestors` — at each step, the number of distinct original
  members the live members descend from (population size at the start, 1
  once every member descends from the same one);
* :func:`hyperparameter_spread` — at each step, per hyperparameter, how far
  apart the live members' values are in the unit coordinates of the space
  (so a log-scaled learning rate is measured in its log range).

:class:`DiversityGuard` is the opt-in remedy: an explore wrapper that keeps
every explored config at least ``min_distance`` (:func:`config_distance`)
from the configs the other members train with.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from poptrain.algorithms.explore import Explore, Perturb
from poptrain.algorithms.serialize import EXPLORES, register_explore
from poptrain.errors import ConfigError, SpaceError
from poptrain.space import Choice, Space

log = logging.getLogger("poptrain.algorithms.diversity")

Segment = Mapping[str, Any]


# -- distance ---------------------------------------------------------------------
def config_distance(a: Mapping[str, Any], b: Mapping[str, Any], space: Space) -> float:
    """The distance between two configs in normalised units, in ``[0, 1]``.

    Per tunable dimension the gap is ``|u − u′|`` of the unit positions
    (:meth:`Dimension.to_unit`: log-scaled values in log space), or for an
    unordered :class:`~poptrain.space.Choice` 0 when the values agree and 1
    otherwise; the distance is the root mean square of the gaps.

    Example:
        >>> from poptrain.space import Choice, Float, Space
        >>> space = Space({"lr": Float(1e-4, 1e-2, log=True), "opt": Choice(["adam", "sgd"])})
        >>> round(config_distance({"lr": 1e-4, "opt": "adam"}, {"lr": 1e-3, "opt": "adam"}, space), 4)  # √(0.5² / 2)
        0.3536
    """
    return float(_distances(_units(a, space), _units(b, space)[None, :], _choice_mask(space))[0])


def _units(config: Mapping[str, Any], space: Space) -> np.ndarray:
    """Unit positions; for an unordered choice, the index of the value (compared for equality only)."""
    out = np.empty(len(space.paths))
    for i, (path, dim) in enumerate(space.dimensions.items()):
        value = space.get(config, path)
        if isinstance(dim, Choice):
            index = dim.index(value)
            if index is None:
                raise SpaceError(f"{'.'.join(path)!r}: {value!r} is not one of {list(dim.values)}")
            out[i] = index
        else:
            out[i] = dim.to_unit(value)
    return out


def _choice_mask(space: Space) -> np.ndarray:
    return np.array([isinstance(d, Choice) for d in space.dimensions.values()], dtype=bool)


def _distances(u: np.ndarray, others: np.ndarray, choice: np.ndarray) -> np.ndarray:
    if others.size == 0 or u.size == 0:
        return np.full(len(others), math.inf) if u.size else np.zeros(len(others))
    gaps = np.abs(others - u[None, :])
    gaps[:, choice] = (gaps[:, choice] > 0).astype(float)
    return np.sqrt((gaps**2).mean(axis=1))


# -- the guard ---------------------------------------------------------------------
@dataclass(frozen=True)
class DiversityGuard(Explore):
    """Keep each explored config at least ``min_distance`` from the other members' configs.

    The wrapped ``explore`` proposes a config as usual. If it lies closer than
    ``min_distance`` (:func:`config_distance`) to the config of any other
    live member, the guard applies ``explore`` again to its own last
    proposal, up to ``tries`` times (a short random walk away from the
    donor, which keeps PBT's small steps), and then draws up to ``tries``
    configs from the prior. It returns the first config far enough from all
    the others; when none is (a population packed tighter than
    ``min_distance`` leaves no room), the farthest one it saw.

    The other members' configs are those the population view shows: in a
    synchronous generation, the configs of members that exploited earlier in
    the same generation count once the view carries them.

    Example:
        >>> import numpy as np
        >>> from poptrain.algorithms import MemberView, PopulationView
        >>> from poptrain.space import Float, Space
        >>> space = Space({"x": Float(0.0, 1.0)})
        >>> pop = PopulationView([MemberView(0, 4, {"x": 0.5}), MemberView(1, 4, {"x": 0.5})])
        >>> new = DiversityGuard(min_distance=0.2)({"x": 0.5}, space=space, rng=np.random.default_rng(0),
        ...                                         population=pop, member_id=0)
        >>> abs(new["x"] - 0.5) >= 0.2
        True
    """

    explore: Explore = field(default_factory=Perturb)
    min_distance: float = 0.05
    tries: int = 10
    kind: ClassVar[str] = "diversity_guard"

    def __post_init__(self) -> None:
        if not isinstance(self.explore, Explore):
            raise ConfigError(f"The 'explore' parameter of DiversityGuard must be an Explore. Got {self.explore!r} instead.")
        d = self.min_distance
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d <= 1:
            raise ConfigError(f"The 'min_distance' parameter of DiversityGuard must be a number in [0, 1]. Got {d!r} instead.")
        t = self.tries
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ConfigError(f"The 'tries' parameter of DiversityGuard must be an int >= 0. Got {t!r} instead.")
        object.__setattr__(self, "min_distance", float(d))
        object.__setattr__(self, "tries", int(t))

    @property
    def observations_needed(self) -> int:
        """What the wrapped explore needs (PB2's data window), so the worker passes it through."""
        return int(getattr(self.explore, "observations_needed", 0) or 0)

    def check_space(self, space: Space) -> None:
        """The wrapped explore's check of the space (PB2's), if it has one."""
        check = getattr(self.explore, "check_space", None)
        if check is not None:
            check(space)

    def __call__(self, config, *, space, rng, population, member_id):  # type: ignore[no-untyped-def]
        choice = _choice_mask(space)
        others = []
        for m in population.members:
            if m.id == member_id or m.failed:
                continue
            try:
                others.append(_units(m.config, space))
            except (SpaceError, KeyError, TypeError):
                continue
        others_arr = np.vstack(others) if others else np.empty((0, len(space.paths)))

        def gap(candidate: Mapping[str, Any]) -> float:
            d = _distances(_units(candidate, space), others_arr, choice)
            return float(d.min()) if d.size else math.inf

        kwargs = dict(space=space, rng=rng, population=population, member_id=member_id)
        current = self.explore(copy.deepcopy(dict(config)), **kwargs)
        best, best_gap = current, gap(current)
        for attempt in range(2 * self.tries + 1):
            if best_gap >= self.min_distance:
                return best
            if attempt == 2 * self.tries:
                break
            if attempt < self.tries:
                current = self.explore(copy.deepcopy(dict(current)), **kwargs)
            else:
                current = space.from_unit(space.to_unit(space.sample(rng)), config)
            g = gap(current)
            if g > best_gap:
                best, best_gap = current, g
        log.debug("DiversityGuard: no config at distance >= %s from the others for member %s; the farthest is at %.4g",
                  self.min_distance, member_id, best_gap)
        return best

    def _params(self) -> dict[str, Any]:
        return {"explore": self.explore.to_json(), "min_distance": self.min_distance, "tries": self.tries}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> "DiversityGuard":
        inner = params.get("explore")
        return cls(**{**params, "explore": EXPLORES.from_json(inner) if inner is not None else Perturb()})


# -- measures over a run's records ----------------------------------------------------
def surviving_ancestors(segments: Iterable[Segment], *, steps: Sequence[int] | None = None) -> list[dict[str, int]]:
    """``[{"step", "alive", "ancestors"}, ...]``: distinct original members behind the live members.

    A member's live segment at ``step`` is the latest of its segments with
    ``start_step < step <= end_step`` (an unfinished segment is open-ended).
    Its ancestor is the member of the first segment of its chain of parents.
    ``steps`` defaults to every step at which a segment ends.

    Example:
        >>> segs = [dict(segment=1, member=0, parent=None, start_step=0, end_step=8),
        ...         dict(segment=2, member=1, parent=None, start_step=0, end_step=4),
        ...         dict(segment=3, member=1, parent=1, start_step=4, end_step=8)]
        >>> surviving_ancestors(segs)
        [{'step': 4, 'alive': 2, 'ancestors': 2}, {'step': 8, 'alive': 2, 'ancestors': 1}]
    """
    segs = _sorted(segments)
    root = _roots(segs)
    out = []
    for step in _grid(segs, steps):
        live = _live(segs, step)
        out.append({"step": step, "alive": len(live), "ancestors": len({root[int(s["segment"])] for s in live})})
    return out


def hyperparameter_spread(
    segments: Iterable[Segment], space: Space, *, steps: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """``[{"step", "spread": {name: value}}, ...]``: how far apart the live members' hyperparameters are.

    For a numeric or ordered dimension the spread is the standard deviation
    of the members' unit positions (0: all equal; at most 0.5). For an
    unordered choice it is the entropy of the members' values divided by its
    largest possible value, ``log(min(members, choices))`` (0: all agree,
    1: as varied as the population allows). Live segments as in
    :func:`surviving_ancestors`.

    Example:
        >>> from poptrain.space import Float, Space
        >>> segs = [dict(segment=1, member=0, parent=None, start_step=0, end_step=4, config={"x": 0.0}),
        ...         dict(segment=2, member=1, parent=None, start_step=0, end_step=4, config={"x": 1.0})]
        >>> hyperparameter_spread(segs, Space({"x": Float(0.0, 1.0)}))
        [{'step': 4, 'spread': {'x': 0.5}}]
    """
    segs = _sorted(segments)
    out = []
    for step in _grid(segs, steps):
        configs = [s.get("config") or {} for s in _live(segs, step)]
        spread: dict[str, float | None] = {}
        for path, dim in space.dimensions.items():
            values = [v for v in (_value(space, c, path) for c in configs) if v is not None and dim.contains(v)]
            name = ".".join(path)
            if not values:
                spread[name] = None
            elif isinstance(dim, Choice):
                spread[name] = _normalised_entropy(values, len(dim.values))
            else:
                spread[name] = float(np.std([dim.to_unit(v) for v in values]))
        out.append({"step": step, "spread": spread})
    return out


def diversity_over_time(result: Any, *, space: Space | None = None, steps: Sequence[int] | None = None) -> dict[str, Any]:
    """Both measures for a run, as columns: ``{"step", "alive", "ancestors", "spread": {name: [...]}}``.

    ``result`` is a :class:`poptrain.results.Result` (or anything with
    ``segments`` and an ``experiment`` dict holding the stored space), or a
    list of segment dicts together with ``space``.
    """
    segments = result if isinstance(result, (list, tuple)) else result.segments
    if space is None:
        if isinstance(result, (list, tuple)):
            raise ConfigError("diversity_over_time needs the space when given a list of segments")
        space = Space.from_json(result.experiment["space"])
    ancestors = surviving_ancestors(segments, steps=steps)
    spread = hyperparameter_spread(segments, space, steps=[a["step"] for a in ancestors])
    names = [".".join(p) for p in space.paths]
    return {
        "step": [a["step"] for a in ancestors],
        "alive": [a["alive"] for a in ancestors],
        "ancestors": [a["ancestors"] for a in ancestors],
        "spread": {n: [s["spread"][n] for s in spread] for n in names},
    }


def _sorted(segments: Iterable[Segment]) -> list[Segment]:
    return sorted(segments, key=lambda s: int(s["segment"]))


def _grid(segs: list[Segment], steps: Sequence[int] | None) -> list[int]:
    if steps is not None:
        return [int(s) for s in steps]
    return sorted({int(s["end_step"]) for s in segs if s.get("end_step") is not None and s["end_step"] > 0})


def _live(segs: list[Segment], step: int) -> list[Segment]:
    latest: dict[int, Segment] = {}
    for s in segs:
        start = int(s.get("start_step") or 0)
        end = s.get("end_step")
        if start < step and (end is None or step <= int(end)):
            latest[int(s["member"])] = s  # ids ascend: a later segment of a member replaces an earlier one
    return [latest[m] for m in sorted(latest)]


def _roots(segs: list[Segment]) -> dict[int, int]:
    root: dict[int, int] = {}
    for s in segs:  # a parent is older than its child, so it has a smaller id and is resolved first
        parent = s.get("parent")
        known = parent is not None and int(parent) in root
        root[int(s["segment"])] = root[int(parent)] if known else int(s["member"])
    return root


def _value(space: Space, config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    try:
        return space.get(config, path)
    except SpaceError:
        return None


def _normalised_entropy(values: list[Any], choices: int) -> float:
    n = len(values)
    top = math.log(min(n, choices))
    if top <= 0:
        return 0.0
    counts = Counter(repr(v) for v in values)
    return float(-sum(c / n * math.log(c / n) for c in counts.values()) / top)


register_explore("diversity_guard", DiversityGuard)
