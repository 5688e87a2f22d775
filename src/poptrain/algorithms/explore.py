"""Explore rules: how a copied config is changed before training goes on."""

from __future__ import annotations

import abc
import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from poptrain.algorithms.serialize import EXPLORES, Component, function_ref, import_function, register_explore
from poptrain.algorithms.types import PopulationView
from poptrain.errors import ConfigError, SpaceError
from poptrain.space import Space


class Explore(Component, abc.ABC):
    """Turns the donor's config into the config the exploiting member trains with.

    ``config`` is the donor's config (the implementation may change its own
    copy freely); the result must be valid in ``space``. ``population`` and
    ``member_id`` (the exploiting member) are there for model-based explores
    such as PB2.
    """

    family: ClassVar[str] = "explore"

    @abc.abstractmethod
    def __call__(
        self,
        config: Mapping[str, Any],
        *,
        space: Space,
        rng: np.random.Generator,
        population: PopulationView,
        member_id: int,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Perturb(Explore):
    """Move every tunable value by a factor drawn uniformly from ``factors`` (paper §4.1.1).

    Each dimension decides what a factor means (see :meth:`Dimension.perturb`).

    Example:
        >>> from poptrain.algorithms import PopulationView
        >>> from poptrain.space import Float, Space
        >>> space = Space({"lr": Float(0.0, 1.0)})
        >>> Perturb()({"lr": 0.5}, space=space, rng=np.random.default_rng(0),
        ...           population=PopulationView([]), member_id=0)["lr"] in (0.4, 0.6)
        True
    """

    factors: tuple[float, ...] = (0.8, 1.2)
    kind: ClassVar[str] = "perturb"

    def __post_init__(self) -> None:
        factors = self.factors
        bad = (
            isinstance(factors, (str, bytes))
            or not hasattr(factors, "__iter__")
            or not list(factors)
            or not all(_positive_number(f) for f in factors)
        )
        if bad:
            raise ConfigError(
                f"The 'factors' parameter of Perturb must be a non-empty list of finite numbers > 0. "
                f"Got {factors!r} instead."
            )
        object.__setattr__(self, "factors", tuple(float(f) for f in factors))

    def __call__(self, config, *, space, rng, population, member_id):  # type: ignore[no-untyped-def]
        out = copy.deepcopy(dict(config))
        for path in space.paths:
            factor = self.factors[int(rng.integers(len(self.factors)))]
            value = space.dimension(path).perturb(space.get(out, path), rng, factor)
            out = space.with_value(out, path, value)
        return out


def _positive_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@dataclass(frozen=True)
class Resample(Explore):
    """Redraw each tunable value from its prior with ``probability``, else take ``fallback``'s value.

    ``fallback=None`` keeps the donor's value. This is Ray Tune's
    ``resample_probability`` and the paper's "resample" explore.

    Example:
        >>> from poptrain.algorithms import PopulationView
        >>> from poptrain.space import Int, Space
        >>> space = Space({"layers": Int(1, 8)})
        >>> Resample(probability=1.0)({"layers": 4}, space=space, rng=np.random.default_rng(0),
        ...                           population=PopulationView([]), member_id=0)["layers"] in range(1, 9)
        True
    """

    probability: float = 0.25
    fallback: Explore | None = field(default_factory=Perturb)
    kind: ClassVar[str] = "resample"

    def __post_init__(self) -> None:
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"The 'probability' parameter of Resample must be a number in [0, 1]. Got {p!r} instead.")
        if self.fallback is not None and not isinstance(self.fallback, Explore):
            raise ConfigError(
                f"The 'fallback' parameter of Resample must be an Explore or None. Got {self.fallback!r} instead."
            )
        object.__setattr__(self, "probability", float(p))

    def __call__(self, config, *, space, rng, population, member_id):  # type: ignore[no-untyped-def]
        if self.fallback is None:
            out = copy.deepcopy(dict(config))
        else:
            out = self.fallback(config, space=space, rng=rng, population=population, member_id=member_id)
        for path in space.paths:
            if rng.random() < self.probability:
                out = space.with_value(out, path, space.dimension(path).sample(rng))
        return out

    def _params(self) -> dict[str, Any]:
        return {"probability": self.probability, "fallback": None if self.fallback is None else self.fallback.to_json()}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> "Resample":
        fallback = params.get("fallback")
        return cls(**{**params, "fallback": None if fallback is None else EXPLORES.from_json(fallback)})


@dataclass(frozen=True)
class CustomExplore(Explore):
    """Explore with a user function ``fn(config, space, rng) -> config``.

    The result is validated against the space. To be stored with an
    experiment, ``fn`` must be importable by name (a module-level function).

    Example:
        >>> from poptrain.algorithms import PopulationView
        >>> from poptrain.space import Float, Space
        >>> def halve_lr(config, space, rng):
        ...     return {**config, "lr": config["lr"] / 2}
        >>> CustomExplore(halve_lr)({"lr": 0.5}, space=Space({"lr": Float(0.0, 1.0)}),
        ...                         rng=np.random.default_rng(0), population=PopulationView([]), member_id=0)
        {'lr': 0.25}
    """

    fn: Callable[[dict[str, Any], Space, np.random.Generator], Mapping[str, Any]]
    kind: ClassVar[str] = "custom"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"The 'fn' parameter of CustomExplore must be callable. Got {self.fn!r} instead.")

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))

    def __call__(self, config, *, space, rng, population, member_id):  # type: ignore[no-untyped-def]
        result = self.fn(copy.deepcopy(dict(config)), space, rng)
        if not isinstance(result, Mapping):
            raise SpaceError(f"custom explore {self.name!r} returned {result!r}, not a config dict")
        try:
            space.validate(result)
        except SpaceError as exc:
            raise SpaceError(f"custom explore {self.name!r} returned an invalid config: {exc}") from None
        return dict(result)

    def _params(self) -> dict[str, Any]:
        return {"function": function_ref(self.fn)}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> "CustomExplore":
        if set(params) != {"function"}:
            raise ConfigError(f"a custom explore needs exactly a 'function' reference, got {params!r}")
        return cls(import_function(params["function"]))


@dataclass(frozen=True, init=False)
class Compose(Explore):
    """Apply several explores in sequence, each to the previous one's result.

    Example:
        >>> Compose(Perturb((0.5, 2.0)), Resample(0.1, fallback=None)).explores[0]
        Perturb(factors=(0.5, 2.0))
    """

    explores: tuple[Explore, ...]
    kind: ClassVar[str] = "compose"

    def __init__(self, *explores: Explore) -> None:
        if not explores or not all(isinstance(e, Explore) for e in explores):
            raise ConfigError(f"Compose needs one or more Explore objects. Got {explores!r} instead.")
        object.__setattr__(self, "explores", tuple(explores))

    def __call__(self, config, *, space, rng, population, member_id):  # type: ignore[no-untyped-def]
        out = dict(config)
        for explore in self.explores:
            out = explore(out, space=space, rng=rng, population=population, member_id=member_id)
        return out

    @property
    def observations_needed(self) -> int:
        """The most interval observations any inner explore asks for (PB2 inside a Compose gets its data)."""
        return max((int(getattr(e, "observations_needed", 0) or 0) for e in self.explores), default=0)

    def check_space(self, space: Any) -> None:
        for e in self.explores:
            check = getattr(e, "check_space", None)
            if callable(check):
                check(space)

    def _params(self) -> dict[str, Any]:
        return {"explores": [e.to_json() for e in self.explores]}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> "Compose":
        explores = params.get("explores")
        if set(params) != {"explores"} or not isinstance(explores, list):
            raise ConfigError(f"a compose explore needs an 'explores' list, got {params!r}")
        return cls(*[EXPLORES.from_json(e) for e in explores])


register_explore("perturb", Perturb)
register_explore("resample", Resample)
register_explore("custom", CustomExplore)
register_explore("compose", Compose)
