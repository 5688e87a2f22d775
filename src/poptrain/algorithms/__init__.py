"""Pure PBT decisions: no I/O, all randomness from a generator passed in.

Example:
    >>> import numpy as np
    >>> from poptrain.algorithms import PBT, MemberView, PopulationView, Truncation, Perturb
    >>> from poptrain.space import Float, Space
    >>> space = Space({"lr": Float(1e-4, 1e-1, log=True)})
    >>> pop = PopulationView([MemberView(i, 5, {"lr": 1e-3}, (float(i),)) for i in range(4)])
    >>> pbt = PBT(interval=5, selection=Truncation(0.25), explore=Perturb())
    >>> pbt.decide(0, pop, space=space, rng=np.random.default_rng(0)).donor
    3
"""

from poptrain.algorithms.explore import Compose, CustomExplore, Explore, Perturb, Resample
from poptrain.algorithms.rng import rng_for
from poptrain.algorithms.scoring import Latest, MeanLast, Scorer, better, donors, is_donor, ranked, usable
from poptrain.algorithms.selection import Selection, Tournament, Truncation, TTest, quantile_size
from poptrain.algorithms.serialize import (
    explore_from_json,
    register_explore,
    register_scorer,
    register_selection,
    register_strategy,
    scorer_from_json,
    selection_from_json,
    strategy_from_json,
)
from poptrain.algorithms.strategy import PBT
from poptrain.algorithms.types import Continue, Decision, Exploit, MemberView, Mode, Observation, PopulationView

__all__ = [
    "PBT",
    "Compose",
    "Continue",
    "CustomExplore",
    "Decision",
    "Exploit",
    "Explore",
    "Latest",
    "MeanLast",
    "MemberView",
    "Mode",
    "Observation",
    "PopulationView",
    "Perturb",
    "Resample",
    "Scorer",
    "Selection",
    "TTest",
    "Tournament",
    "Truncation",
    "better",
    "donors",
    "explore_from_json",
    "is_donor",
    "quantile_size",
    "ranked",
    "register_explore",
    "register_scorer",
    "register_selection",
    "register_strategy",
    "rng_for",
    "scorer_from_json",
    "selection_from_json",
    "strategy_from_json",
    "usable",
]
