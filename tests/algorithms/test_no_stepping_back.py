"""Async: a member is compared with, and copies from, only members that trained at least as long."""

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


def test_members_behind_are_left_out_of_the_ranking():
    pbt = PBT(interval=4, selection=Truncation(0.25), explore=Perturb())
    # against members at its step or beyond, member 0 is the worst: it copies, although
    # the members still at step 12 have lower (earlier) scores
    pop = _pop([(16, 0.5), (16, 0.9), (12, 0.1), (12, 0.2)])
    d = pbt.decide(0, pop, space=SPACE, rng=np.random.default_rng(0))
    assert isinstance(d, Exploit) and d.donor == 1
    # the first member to reach a step has nobody to compare with yet
    alone = _pop([(16, 0.1), (12, 0.9), (12, 0.8), (12, 0.7)])
    assert isinstance(pbt.decide(0, alone, space=SPACE, rng=np.random.default_rng(0)), Continue)
