"""An experiment: what to train, what to search, how to decide, for how long."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from poptrain.algorithms import PBT
from poptrain.algorithms.rng import INIT, rng_for
from poptrain.errors import ConfigError, SpaceError
from poptrain.space import Space
from poptrain.trainable import check_trainable_class, reference


@dataclass
class Experiment:
    """One PBT run.

    Args:
        name: the experiment's name in storage; running again with the same
            name resumes it.
        trainable: a class with ``__init__(config)``, ``step() -> dict``,
            ``state_dict()``, ``load_state_dict(state)`` and optionally
            ``apply_config(config)``.
        space: a :class:`~poptrain.space.Space` or the nested dict for one.
        metric: the key of ``step()``'s dict that ranks members.
        mode: ``"max"`` or ``"min"``.
        strategy: a :class:`~poptrain.algorithms.PBT` (interval, selection, explore).
        population: number of members.
        budget: steps each member trains.
        seed: seeds the initial configs and every decision.
        max_failures: times a member's ``step()`` may raise before it is marked failed.
        initial_configs: start configs (one per member) instead of samples.
        scores_kept: how many recent scores a member carries (for mean-of-k
            scoring and the t-test).

    Example:
        >>> from poptrain.space import Float
        >>> class T:
        ...     def __init__(self, c): self.x = 0.0; self.c = c
        ...     def step(self): self.x += self.c["lr"]; return {"x": self.x}
        ...     def state_dict(self): return {"x": self.x}
        ...     def load_state_dict(self, s): self.x = s["x"]
        >>> e = Experiment(name="demo", trainable=T, space={"lr": Float(0.1, 1.0)}, metric="x", budget=10)
        >>> len(e.initial_member_configs())
        8
    """

    name: str
    trainable: Any
    space: Any
    metric: str
    mode: str = "max"
    strategy: PBT = field(default_factory=PBT)
    population: int = 8
    budget: int = 100
    seed: int = 0
    max_failures: int = 3
    initial_configs: Sequence[Mapping[str, Any]] | None = None
    scores_kept: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"The 'name' of an experiment must be a non-empty string; got {self.name!r} instead.")
        check_trainable_class(self.trainable)
        if not isinstance(self.space, Space):
            if not isinstance(self.space, Mapping):
                raise ConfigError(f"The 'space' of experiment {self.name!r} must be a Space or a dict; got {type(self.space).__name__}.")
            self.space = Space(self.space)
        if self.mode not in ("max", "min"):
            raise ConfigError(f"The 'mode' of experiment {self.name!r} must be 'max' or 'min'; got {self.mode!r} instead.")
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError(f"The 'metric' of experiment {self.name!r} must be a non-empty string; got {self.metric!r} instead.")
        if not isinstance(self.strategy, PBT):
            raise ConfigError(f"The 'strategy' of experiment {self.name!r} must be a poptrain.algorithms.PBT; got {self.strategy!r}.")
        check = getattr(self.strategy.explore, "check_space", None)
        if callable(check):  # e.g. PB2 refuses a space it cannot model now, not at the first decision
            check(self.space)
        for key, low in (("population", 2), ("budget", 1), ("max_failures", 0), ("scores_kept", 1)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"The '{key}' of experiment {self.name!r} must be an int >= {low}; got {value!r} instead.")
        if self.initial_configs is not None:
            if len(self.initial_configs) != self.population:
                raise ConfigError(
                    f"experiment {self.name!r} has {len(self.initial_configs)} initial_configs for a population of {self.population}"
                )
            for i, config in enumerate(self.initial_configs):
                try:
                    self.space.validate(config)
                except SpaceError as exc:
                    raise ConfigError(f"initial config of member {i}: {exc}") from None

    @property
    def checkpoint_prefix(self) -> str:
        """The experiment's folder under the checkpoint URL: the name, made safe for any filesystem."""
        return checkpoint_prefix(self.name)

    def initial_member_configs(self) -> list[dict[str, Any]]:
        if self.initial_configs is not None:
            return [dict(c) for c in self.initial_configs]
        return [self.space.sample(rng_for(self.seed, INIT, i)) for i in range(self.population)]

    def spec(self) -> dict[str, Any]:
        """The JSON stored with the experiment; what resume compares."""
        return {
            "name": self.name,
            "trainable": reference(self.trainable),
            "space": self.space.to_json(),
            "strategy": self.strategy.to_json(),
            "metric": self.metric,
            "mode": self.mode,
            "population": self.population,
            "budget": self.budget,
            "seed": self.seed,
            "max_failures": self.max_failures,
            "scores_kept": self.scores_kept,
            "initial_configs": None if self.initial_configs is None else [dict(c) for c in self.initial_configs],
        }


def checkpoint_prefix(name: str) -> str:
    """``name`` with anything but letters, digits, ``.``, ``_`` and ``-`` replaced, plus a short hash when changed.

    Example:
        >>> checkpoint_prefix("digits")
        'digits'
        >>> checkpoint_prefix("no exploit/explore")
        'no_exploit_explore-f811f9cb'
    """
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "experiment"
    if safe == name:
        return name
    return f"{safe[:80]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


# Keys whose change makes a stored experiment a different experiment.
COMPARED = ("space", "strategy", "metric", "mode", "population", "budget", "seed", "initial_configs")


def spec_differences(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two specs, for the 'name reused' error."""
    out = []
    for key in COMPARED:
        a, b = stored.get(key), new.get(key)
        if a == b:
            continue
        if key == "space":
            try:
                out += [f"space: {d}" for d in Space.from_json(a).diff(Space.from_json(b))] or [f"space: {a} != {b}"]
                continue
            except Exception:  # noqa: BLE001 - fall back to the raw values
                pass
        out.append(f"{key}: stored {a!r}, given {b!r}")
    return out


def from_spec(spec: Mapping[str, Any], trainable: Any = None) -> Experiment:
    """Rebuild an Experiment from storage (a worker joining from another host)."""
    from poptrain.trainable import resolve

    return Experiment(
        name=spec["name"],
        trainable=trainable if trainable is not None else resolve(spec["trainable"]),
        space=Space.from_json(spec["space"]),
        metric=spec["metric"],
        mode=spec["mode"],
        strategy=PBT.from_json(spec["strategy"]),
        population=spec["population"],
        budget=spec["budget"],
        seed=spec["seed"],
        max_failures=spec.get("max_failures", 3),
        initial_configs=spec.get("initial_configs"),
        scores_kept=spec.get("scores_kept", 10),
    )
