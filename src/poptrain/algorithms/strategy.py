"""The PBT strategy: when a member may exploit, and what it then does."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np

from poptrain.algorithms.explore import Explore, Resample
from poptrain.algorithms.scoring import Latest, Scorer, is_donor, ranked, usable
from poptrain.algorithms.selection import Selection, Truncation
from poptrain.algorithms.serialize import EXPLORES, SCORERS, SELECTIONS, Component, register_strategy
from poptrain.algorithms.types import Continue, Decision, Exploit, MemberView, PopulationView
from poptrain.errors import ConfigError
from poptrain.space import Space


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"The '{name}' parameter of PBT must be an int >= {minimum}. Got {value!r} instead.")


@dataclass(frozen=True, kw_only=True)
class PBT(Component):
    """Population-Based Training (Jaderberg et al. 2017) as a pure decision rule.

    A member is *ready* every ``interval`` steps; from ``burn_in`` on, a ready
    member asks ``selection`` for a donor and, if it gets one, copies the
    donor's checkpoint and trains with ``explore`` applied to the donor's
    config. With ``synchronous=True`` the workers wait for the whole
    population at each ready step and call :meth:`decide_generation`.

    Example:
        >>> import numpy as np
        >>> from poptrain.algorithms import MemberView, PopulationView
        >>> from poptrain.space import Float, Space
        >>> space = Space({"lr": Float(1e-4, 1e-1, log=True)})
        >>> pop = PopulationView([MemberView(i, 10, {"lr": 10.0 ** -(i + 1)}, (float(i),)) for i in range(4)])
        >>> decision = PBT(interval=10).decide(0, pop, space=space, rng=np.random.default_rng(0))
        >>> decision.donor
        3
    """

    interval: int = 5
    burn_in: int = 0
    selection: Selection | None = None
    explore: Explore | None = None
    scorer: Scorer | None = None
    synchronous: bool = False
    kind: ClassVar[str] = "pbt"
    family: ClassVar[str] = "strategy"

    def __post_init__(self) -> None:
        _check_int("interval", self.interval, 1)
        _check_int("burn_in", self.burn_in, 0)
        defaults = {"selection": (Truncation(0.25), Selection), "explore": (Resample(0.25), Explore),
                    "scorer": (Latest(), Scorer)}
        for name, (default, base) in defaults.items():
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, default)
            elif not isinstance(value, base):
                raise ConfigError(
                    f"The '{name}' parameter of PBT must be a {base.__name__} object. Got {value!r} instead."
                )
        if not isinstance(self.synchronous, bool):
            raise ConfigError(f"The 'synchronous' parameter of PBT must be True or False. Got {self.synchronous!r} instead.")
        object.__setattr__(self, "interval", int(self.interval))
        object.__setattr__(self, "burn_in", int(self.burn_in))

    def is_ready(self, step: int) -> bool:
        """Whether ``step`` is a ready point (during burn-in too: workers still save and wait there)."""
        return step > 0 and step % self.interval == 0

    def can_exploit(self, step: int) -> bool:
        """Whether a member at ``step`` may exploit: a ready point at or after ``burn_in``."""
        return self.is_ready(step) and step >= self.burn_in

    def next_ready(self, step: int) -> int:
        """The smallest ready step strictly greater than ``step``."""
        return max(self.interval, (step // self.interval + 1) * self.interval)

    def decide(
        self, member_id: int, population: PopulationView, *, space: Space, rng: np.random.Generator
    ) -> Decision:
        """Continue, or Exploit(donor, explored copy of the donor's config), for one ready member."""
        member = population.member(member_id)
        if member.failed:
            return Continue(reason="member has failed")
        if not self.can_exploit(member.step):
            why = "burn-in" if self.is_ready(member.step) else "not a ready step"
            return Continue(reason=f"{why} (step {member.step}, interval {self.interval}, burn-in {self.burn_in})")
        # Async: a member is compared only with the members that have trained
        # at least as long. Scores of members behind are from earlier in
        # training (unfairly low for a metric that grows with training), and
        # copying their weights would send the member back in time: two
        # members could then trade places forever and the population would
        # never reach its budget.
        population = _peers(population, member.step)
        order = ranked(population, self.scorer)
        donor_id = self.selection.select(member_id, population, self.scorer, rng)  # type: ignore[union-attr]
        if donor_id is None:
            return Continue(reason=f"kept: {self._describe(member, order)}")
        donor = self._checked_donor(donor_id, member_id, population)
        config = self.explore(  # type: ignore[misc]
            copy.deepcopy(dict(donor.config)), space=space, rng=rng, population=population, member_id=member_id
        )
        space.validate(config)
        reason = f"{self._describe(member, order)} copies member {donor.id} with {self._describe(donor, order)}"
        return Exploit(donor=donor.id, config=config, reason=reason)

    def decide_generation(
        self, population: PopulationView, *, space: Space, rng: np.random.Generator
    ) -> dict[int, Decision]:
        """Decisions for the whole population at one ready step (synchronous mode).

        All decisions come from one snapshot, members are taken in id order,
        and the result does not depend on the order of ``population.members``.
        Within a generation a member that exploits is no one's donor and a
        donor does not exploit, so every exploit copies a checkpoint that
        stays as it was at this step.
        """
        members = sorted(population.members, key=lambda m: m.id)
        if len({m.id for m in members}) != len(members):
            raise ConfigError(f"member ids must be unique, got {[m.id for m in members]}")
        steps = sorted({m.step for m in members if not m.failed})
        if len(steps) > 1:
            raise ConfigError(f"a generation needs all live members at the same step, got steps {steps}")
        observations = sorted(population.observations, key=lambda o: (o.member, o.step_start, o.step_end))
        snapshot = PopulationView(tuple(members), population.mode, tuple(observations))
        decisions: dict[int, Decision] = {}
        exploiters: dict[int, Mapping[str, Any]] = {}
        donors_used: set[int] = set()
        for member in members:
            if member.id in donors_used:
                decisions[member.id] = Continue(reason="donor of another member in this generation")
                continue
            view = snapshot
            if exploiters:
                # Members that exploited earlier in this generation carry their
                # new config (PB2 counts them as pending points, a diversity
                # guard keeps away from them) but are nobody's donor.
                view = dataclasses.replace(snapshot, members=tuple(
                    dataclasses.replace(m, has_checkpoint=False, config=exploiters[m.id]) if m.id in exploiters else m
                    for m in members
                ))
            decision = self.decide(member.id, view, space=space, rng=rng)
            if isinstance(decision, Exploit):
                exploiters[member.id] = decision.config
                donors_used.add(decision.donor)
            decisions[member.id] = decision
        return decisions

    def _checked_donor(self, donor_id: int, member_id: int, population: PopulationView) -> MemberView:
        try:
            donor = population.member(donor_id)
        except KeyError:
            donor = None
        if donor is None or donor_id == member_id or not is_donor(donor, self.scorer):  # type: ignore[arg-type]
            raise ConfigError(
                f"{self.selection!r} chose member {donor_id} as donor for member {member_id}; a donor must be "
                f"another member with a usable score and a checkpoint that has not failed"
            )
        return donor

    def _describe(self, member: MemberView, order: list[MemberView]) -> str:
        score = self.scorer(member)  # type: ignore[misc]
        rank = next(i for i, m in enumerate(order) if m.id == member.id) + 1
        shown = f"{score:.6g}" if usable(score) else "no usable score"
        return f"score {shown} (rank {rank} of {len(order)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "interval": self.interval,
            "burn_in": self.burn_in,
            "synchronous": self.synchronous,
            "selection": self.selection.to_json(),  # type: ignore[union-attr]
            "explore": self.explore.to_json(),  # type: ignore[union-attr]
            "scorer": self.scorer.to_json(),  # type: ignore[union-attr]
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "PBT":
        """The strategy written by :meth:`to_json`; ConfigError naming what is wrong otherwise."""
        if not isinstance(data, Mapping) or data.get("kind") != PBT.kind:
            raise ConfigError(f"expected a JSON object with kind 'pbt', got {data!r}")
        known = {"kind", "interval", "burn_in", "synchronous", "selection", "explore", "scorer"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown PBT parameters {sorted(unknown)} in {dict(data)!r}")
        parts = {
            name: registry.from_json(data[name])
            for name, registry in (("selection", SELECTIONS), ("explore", EXPLORES), ("scorer", SCORERS))
            if data.get(name) is not None
        }
        scalars = {k: data[k] for k in ("interval", "burn_in", "synchronous") if k in data}
        return PBT(**scalars, **parts)


register_strategy("pbt", PBT)


def _peers(population: PopulationView, step: int) -> PopulationView:
    if all(m.step >= step for m in population.members):
        return population
    return dataclasses.replace(population, members=tuple(m for m in population.members if m.step >= step))
