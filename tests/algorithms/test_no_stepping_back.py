"""Async exploit never copies weights that are behind the member (no livelock, bounded compute)."""

from __future__ import annotations

import numpy as np

from poptrain.algorithms import PBT, Continue, Exploit, MemberView, Perturb, PopulationView, Truncation
from poptrain.space import Float, Space

SPACE = Space({"lr": Float(1e-3, 1.0, log=True)})


def _pop(steps_scores):
    return PopulationView([MemberView(i, st, {"lr": 0.1}, (sc,)) for i, (st, sc) in enumerate(steps_scores)])


def test_bottom_member_does_not_copy_members_behind_it():
    pbt = PBT(interval=4, selection=Truncation(0.25), explore=Perturb())
    # member 0 just reached step 16 and ranks last; the better members are still at step 12
    pop = _pop([(16, 0.1), (12, 0.9), (12, 0.8), (12, 0.7)])
    for seed in range(20):
        assert isinstance(pbt.decide(0, pop, space=SPACE, rng=np.random.default_rng(seed)), Continue)


def test_bottom_member_copies_a_better_member_level_or_ahead():
    pbt = PBT(interval=4, selection=Truncation(0.25), explore=Perturb())
    pop = _pop([(16, 0.1), (20, 0.9), (12, 0.8), (12, 0.7)])
    donors = {pbt.decide(0, pop, space=SPACE, rng=np.random.default_rng(seed)).donor for seed in range(20)}
    assert donors == {1}


def test_members_behind_still_rank():
    # member 0 is not in the bottom quarter because of members behind it: it keeps going
    pbt = PBT(interval=4, selection=Truncation(0.25), explore=Perturb())
    pop = _pop([(16, 0.5), (16, 0.9), (12, 0.1), (12, 0.2)])
    assert isinstance(pbt.decide(0, pop, space=SPACE, rng=np.random.default_rng(0)), Continue)
    d = pbt.decide(2, _pop([(16, 0.5), (16, 0.9), (16, 0.1), (12, 0.2)]), space=SPACE, rng=np.random.default_rng(0))
    assert isinstance(d, Exploit) and d.donor == 1
