"""Replay: train one fresh member from scratch following a schedule, with no weight copying.

The standard check that the schedule, not luck, made the winner: if the
replayed member ends close to the PBT best, the schedule carries over to a
plain training run.

At each change of config the member keeps its weights and takes the new
config the way an exploit would: ``apply_config(config)`` when the trainable
has it, otherwise a new instance built with the config and loaded with the
previous instance's ``state_dict()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from poptrain.errors import ConfigError, TrainableError
from poptrain.reporting.schedule import Schedule


@dataclass
class ReplayOutcome:
    """What a replay reached, next to the PBT best it replays.

    Attributes:
        metric: the metric compared.
        mode: ``"max"`` or ``"min"``.
        score: the replayed member's metric after its last step.
        pbt_score: the PBT best's score (the schedule's ``score``), if known.
        steps: the steps trained.
        history: the metrics of every step, in order.
    """

    metric: str
    mode: str
    score: float
    pbt_score: float | None
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def difference(self) -> float | None:
        """``score - pbt_score`` (positive: the replay did better in ``max`` mode)."""
        return None if self.pbt_score is None else self.score - self.pbt_score

    @property
    def relative_difference(self) -> float | None:
        """``|score - pbt_score| / |pbt_score|``, or None when there is nothing to compare."""
        if self.pbt_score is None or self.pbt_score == 0 or not math.isfinite(self.score):
            return None
        return abs(self.score - self.pbt_score) / abs(self.pbt_score)


def replay(trainable: Any, schedule: Schedule, *, metric: str | None = None, mode: str | None = None,
           steps: int | None = None, on_step: Callable[[int, Mapping[str, float], Mapping[str, Any]], None] | None = None,
           ) -> ReplayOutcome:
    """Train a fresh ``trainable`` for ``steps`` steps (default: the schedule's length) under ``schedule``.

    Args:
        trainable: the experiment's trainable class.
        schedule: the schedule to follow (e.g. ``Schedule.from_result(result)``).
        metric: the metric to report (default: the schedule's).
        on_step: called as ``on_step(step, metrics, config)`` after every step.

    Example:
        >>> class Counter:
        ...     def __init__(self, c): self.x, self.c = 0.0, c
        ...     def apply_config(self, c): self.c = c
        ...     def step(self): self.x += self.c["lr"]; return {"x": self.x}
        ...     def state_dict(self): return {"x": self.x}
        ...     def load_state_dict(self, s): self.x = s["x"]
        >>> s = Schedule.from_json({"format": "poptrain.schedule/1", "metric": "x", "segments": [
        ...     {"start_step": 0, "end_step": 2, "config": {"lr": 1.0}},
        ...     {"start_step": 2, "end_step": 4, "config": {"lr": 0.5}}]})
        >>> replay(Counter, s).score
        3.0
    """
    from poptrain.trainable import build, check_trainable_class

    check_trainable_class(trainable)
    metric = metric or schedule.metric
    if not metric:
        raise ConfigError("replay needs the metric to report: the schedule names none; pass metric=...")
    steps = schedule.end_step if steps is None else int(steps)
    if steps < 1:
        raise ConfigError(f"The 'steps' argument of replay must be >= 1; got {steps}.")
    config = schedule.at(0)
    member = build(trainable, config)
    history: list[dict[str, float]] = []
    for done in range(steps):
        wanted = schedule.at(done)
        if wanted != config:
            if callable(getattr(member, "apply_config", None)):
                member.apply_config(dict(wanted))
            else:
                member = build(trainable, wanted, member.state_dict())
            config = wanted
        metrics = member.step()
        if not isinstance(metrics, Mapping) or metric not in metrics:
            raise TrainableError(f"replay: step {done + 1} returned {metrics!r}, without the metric {metric!r}")
        row = {str(k): float(v) for k, v in metrics.items()}
        history.append(row)
        if on_step is not None:
            on_step(done + 1, row, config)
    return ReplayOutcome(metric=metric, mode=mode or schedule.mode or "max", score=history[-1][metric],
                         pbt_score=schedule.score, steps=steps, history=history)
