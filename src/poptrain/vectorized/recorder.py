"""Where the vectorized engine writes what happened: one small object, all record keeping.

The engine calls a :class:`Recorder` and nothing else to keep records, so the
same run can be kept in memory (:class:`MemoryRecorder`, the default) or in the
storage that the process path writes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from poptrain.algorithms.types import Mode
from poptrain.checkpoints import CheckpointRef


class Recorder(Protocol):
    """What the engine reports, in order: ``start``, then steps and exploits, then ``finish``."""

    def start(self, configs: Sequence[Mapping[str, Any]], *, step: int) -> None:
        """The population begins (``step`` 0) or resumes (``step`` > 0) with these configs."""

    def record_steps(self, step: int, metrics: Sequence[Mapping[str, float]]) -> None:
        """Every member finished ``step``; ``metrics[i]`` is member ``i``'s."""

    def record_exploit(self, member: int, donor: int, step: int, old_config: Mapping[str, Any],
                       new_config: Mapping[str, Any]) -> None:
        """At ``step`` ``member`` took ``donor``'s weights (as they were before this step's
        exploits) and switched from ``old_config`` to ``new_config``."""

    def record_checkpoint(self, step: int, ref: CheckpointRef) -> None:
        """The whole population, as it is after ``step``'s exploits, is saved at ``ref``."""

    def finish(self) -> None:
        """The budget is spent."""


@dataclass(frozen=True)
class HistoryRow:
    member: int
    step: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class ExploitRecord:
    member: int
    donor: int
    step: int
    old_config: Mapping[str, Any]
    new_config: Mapping[str, Any]


@dataclass
class Segment:
    """A stretch of one member's life under one config; ``parent`` is the donor's segment."""

    id: int
    member: int
    parent: int | None
    start_step: int
    end_step: int
    config: Mapping[str, Any]


@dataclass(frozen=True)
class Best:
    member: int
    step: int
    score: float
    config: Mapping[str, Any]


@dataclass
class PopulationResult:
    """Everything a :class:`MemoryRecorder` kept about one run."""

    metric: str
    mode: Mode
    configs: list[dict[str, Any]]
    history: list[HistoryRow] = field(default_factory=list)
    exploits: list[ExploitRecord] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    checkpoint: CheckpointRef | None = None
    """The latest checkpoint of the whole population (``resume_from=`` takes it)."""
    best_state: dict[str, Any] | None = None
    """The best member's weights at the end, as ``model().load_state_dict`` takes them."""

    @property
    def scores(self) -> list[float]:
        """Each member's latest value of the metric (NaN when none)."""
        out = [math.nan] * len(self.configs)
        for row in self.history:
            out[row.member] = float(row.metrics.get(self.metric, math.nan))
        return out

    @property
    def best(self) -> Best | None:
        """The member whose latest score is best; None when no score is finite."""
        best: Best | None = None
        last_step = max((r.step for r in self.history), default=0)
        sign = 1.0 if self.mode == "max" else -1.0
        for member, score in enumerate(self.scores):
            if math.isfinite(score) and (best is None or sign * score > sign * best.score):
                best = Best(member, last_step, score, self.configs[member])
        return best

    def schedule(self, member: int) -> list[Segment]:
        """The chain of segments behind ``member``, oldest first: its hyperparameter schedule."""
        by_id = {s.id: s for s in self.segments}
        current = [s for s in self.segments if s.member == member][-1]
        chain = [current]
        while chain[-1].parent is not None:
            chain.append(by_id[chain[-1].parent])
        return chain[::-1]


class MemoryRecorder:
    """Keeps the run in memory; :attr:`result` is what :func:`train_population` returns.

    Example:
        >>> rec = MemoryRecorder(metric="acc", mode="max")
        >>> rec.start([{"lr": 0.1}, {"lr": 0.01}], step=0)
        >>> rec.record_steps(1, [{"acc": 0.5}, {"acc": 0.7}])
        >>> rec.record_exploit(0, 1, 1, {"lr": 0.1}, {"lr": 0.012})
        >>> rec.finish()
        >>> rec.result.best.member, [s.parent for s in rec.result.schedule(0)]
        (1, [None, 1])
    """

    def __init__(self, *, metric: str, mode: Mode) -> None:
        self.result = PopulationResult(metric=metric, mode=mode, configs=[])
        self._current: list[int] = []

    def start(self, configs: Sequence[Mapping[str, Any]], *, step: int) -> None:
        self.result.configs = [copy.deepcopy(dict(c)) for c in configs]
        self._current = []
        for member, config in enumerate(self.result.configs):
            self._new_segment(member, None, step, config)

    def _new_segment(self, member: int, parent: int | None, step: int, config: Mapping[str, Any]) -> None:
        seg = Segment(len(self.result.segments), member, parent, step, step, copy.deepcopy(dict(config)))
        self.result.segments.append(seg)
        if member < len(self._current):
            self._current[member] = seg.id
        else:
            self._current.append(seg.id)

    def record_steps(self, step: int, metrics: Sequence[Mapping[str, float]]) -> None:
        for member, values in enumerate(metrics):
            self.result.history.append(HistoryRow(member, step, dict(values)))
            self.result.segments[self._current[member]].end_step = step

    def record_exploit(self, member: int, donor: int, step: int, old_config: Mapping[str, Any],
                       new_config: Mapping[str, Any]) -> None:
        self.result.exploits.append(ExploitRecord(member, donor, step, copy.deepcopy(dict(old_config)),
                                                  copy.deepcopy(dict(new_config))))
        # The donor gave the weights it had before this step's exploits: if it
        # was itself exploited at this step, its parent is the segment before.
        parent = self._current[donor]
        if self.result.segments[parent].start_step == step and self.result.segments[parent].parent is not None:
            parent = [s.id for s in self.result.segments[:parent] if s.member == donor][-1]
        self._new_segment(member, parent, step, new_config)
        self.result.configs[member] = copy.deepcopy(dict(new_config))

    def record_checkpoint(self, step: int, ref: CheckpointRef) -> None:
        self.result.checkpoint = ref

    def finish(self) -> None:
        pass
