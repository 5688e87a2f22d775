"""The best member's hyperparameter schedule as a file, and as a function of the step.

Format (``poptrain.schedule/1``), a JSON object::

    {
      "format": "poptrain.schedule/1",
      "experiment": "quadratic",          # optional: where it came from
      "metric": "Q", "mode": "max",
      "member": 3, "score": 1.19,         # optional: the member and score it was taken from
      "segments": [
        {"start_step": 0,  "end_step": 10, "config": {"lr": 0.1}},
        {"start_step": 10, "end_step": 40, "config": {"lr": 0.05}, "donor": 5}
      ]
    }

A segment covers the training steps taken from ``start_step`` completed
steps up to ``end_step`` completed steps: the model trains its steps number
``start_step + 1 .. end_step`` with ``config``. Segments are in order, each
starting where the previous one ended, the first at step 0. ``donor`` (who
was copied when the segment began) is informational. Unknown keys are kept
out of the way of older readers: they are ignored.

In plain training code::

    schedule = Schedule.load("schedule.json")
    for epoch in range(schedule.end_step):
        config = schedule.at(epoch)      # epochs completed so far
        set_learning_rate(optimizer, config["lr"])
        train_one_epoch(...)
"""

from __future__ import annotations

import bisect
import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from poptrain.errors import ConfigError
from poptrain.reporting.data import field_of, json_safe

FORMAT = "poptrain.schedule/1"


@dataclass(frozen=True)
class Segment:
    """Steps ``start_step + 1 .. end_step`` are trained with ``config``."""

    start_step: int
    end_step: int
    config: Mapping[str, Any]
    donor: int | None = None


@dataclass(frozen=True)
class Schedule:
    """A hyperparameter schedule: which config to train with at each step."""

    segments: tuple[Segment, ...]
    metric: str | None = None
    mode: str | None = None
    experiment: str | None = None
    member: int | None = None
    score: float | None = None

    def __post_init__(self) -> None:
        if not self.segments:
            raise ConfigError("A schedule needs at least one segment; got none.")
        expected = 0
        for i, seg in enumerate(self.segments):
            if seg.start_step != expected:
                raise ConfigError(
                    f"Schedule segment {i} must start at step {expected} (where the previous one ended); "
                    f"got start_step={seg.start_step}.")
            if seg.end_step < seg.start_step:
                raise ConfigError(f"Schedule segment {i} ends (step {seg.end_step}) before it starts "
                                  f"(step {seg.start_step}).")
            expected = seg.end_step
        object.__setattr__(self, "_ends", [s.end_step for s in self.segments])

    @property
    def end_step(self) -> int:
        """The number of steps the schedule covers."""
        return self.segments[-1].end_step

    def __len__(self) -> int:
        return len(self.segments)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def at(self, step: int) -> dict[str, Any]:
        """The config to train with when ``step`` steps are completed (so ``at(0)`` is the first).

        Past the end of the schedule the last config holds.
        """
        if isinstance(step, bool) or not isinstance(step, int) and not hasattr(step, "__index__"):
            raise ConfigError(f"The 'step' argument of Schedule.at must be an integer; got {step!r}.")
        step = int(step)
        if step < 0:
            raise ConfigError(f"The 'step' argument of Schedule.at must be >= 0; got {step}.")
        i = bisect.bisect_right(self._ends, step)  # type: ignore[attr-defined]
        seg = self.segments[min(i, len(self.segments) - 1)]
        return copy.deepcopy(dict(seg.config))

    def changes(self) -> list[int]:
        """The steps at which the config changes (the start of every segment but the first)."""
        return [s.start_step for s in self.segments[1:] if s.start_step < s.end_step]

    # -- JSON -------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The schedule as a ``poptrain.schedule/1`` JSON object."""
        out: dict[str, Any] = {"format": FORMAT}
        for key in ("experiment", "metric", "mode", "member", "score"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["segments"] = []
        for s in self.segments:
            seg: dict[str, Any] = {"start_step": s.start_step, "end_step": s.end_step, "config": dict(s.config)}
            if s.donor is not None:
                seg["donor"] = s.donor
            out["segments"].append(seg)
        return json_safe(out)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the schedule to ``path`` as JSON (atomically) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.dumps() + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Schedule:
        """Read a ``poptrain.schedule/1`` object (or its JSON text)."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"A schedule must be JSON; this is not: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"A schedule must be a JSON object; got {type(data).__name__}.")
        fmt = data.get("format")
        if fmt != FORMAT:
            raise ConfigError(f"Unknown schedule format {fmt!r}; this version of poptrain reads {FORMAT!r}.")
        raw = data.get("segments")
        if not isinstance(raw, list):
            raise ConfigError("A schedule's 'segments' must be a list of {start_step, end_step, config}.")
        segments = []
        for i, s in enumerate(raw):
            if not isinstance(s, Mapping) or not {"start_step", "end_step", "config"} <= set(s):
                raise ConfigError(f"Schedule segment {i} must have start_step, end_step and config; got {s!r}.")
            if not isinstance(s["config"], Mapping):
                raise ConfigError(f"Schedule segment {i}: 'config' must be an object; got {s['config']!r}.")
            try:
                start, end = int(s["start_step"]), int(s["end_step"])
            except (TypeError, ValueError):
                raise ConfigError(f"Schedule segment {i}: steps must be integers; got {s!r}.") from None
            donor = s.get("donor")
            segments.append(Segment(start, end, dict(s["config"]), None if donor is None else int(donor)))
        return cls(tuple(segments), metric=data.get("metric"), mode=data.get("mode"),
                   experiment=data.get("experiment"), member=data.get("member"), score=data.get("score"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schedule:
        """Read a schedule file written by :meth:`save` or ``poptrain best --schedule-out``."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"Cannot read the schedule file {str(path)!r}: {exc.strerror or exc}") from None
        return cls.from_json(text)

    @classmethod
    def from_result(cls, result: Any) -> Schedule:
        """The best member's schedule of a result (``result.best["schedule"]``)."""
        best = field_of(result, "best")
        experiment = field_of(result, "experiment") or {}
        if not best or not best.get("schedule"):
            name = experiment.get("name", "")
            raise ConfigError(f"Experiment '{name}' has no best member yet, so no schedule to export.")
        pieces = sorted(best["schedule"], key=lambda p: (int(p["start_step"]), int(p["end_step"])))
        segments = tuple(Segment(int(p["start_step"]), int(p["end_step"]), dict(p.get("config") or {}),
                                 p.get("donor")) for p in pieces)
        return cls(segments, metric=experiment.get("metric"), mode=experiment.get("mode"),
                   experiment=experiment.get("name"), member=best.get("member"), score=best.get("score"))


def write_schedule(result: Any, path: str | os.PathLike[str]) -> Schedule:
    """Write the best member's schedule of ``result`` to ``path``; returns the schedule written."""
    schedule = Schedule.from_result(result)
    schedule.save(path)
    return schedule
