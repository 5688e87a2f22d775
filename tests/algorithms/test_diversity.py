"""Diversity measures on a lineage checked by hand, and the guard that keeps explored configs apart."""

import doctest
import json
import math
import pickle
from types import SimpleNamespace

import numpy as np
import pytest

import poptrain.algorithms.diversity as diversity_module
from poptrain.algorithms import MemberView, PBT, Perturb, PopulationView, Resample, explore_from_json, strategy_from_json
from poptrain.algorithms.diversity import (
    DiversityGuard,
    config_distance,
    diversity_over_time,
    hyperparameter_spread,
    surviving_ancestors,
)
from poptrain.errors import ConfigError
from poptrain.space import Choice, Float, Space

SPACE = Space({"lr": Float(1e-4, 1e-0, log=True), "opt": Choice(["adam", "sgd"])})


def seg(segment, member, parent, start, end, lr, opt="adam"):
    return dict(segment=segment, member=member, parent=parent, start_step=start, end_step=end,
                config={"lr": lr, "opt": opt})


# Three members, interval 4, budget 12:
#   step 4: member 2 copies member 0 (segment 4, parent 1)
#   step 8: member 1 copies member 2 (segment 5, parent 4), so it descends from member 0 too
LINEAGE = [
    seg(1, 0, None, 0, 12, 1e-2),
    seg(2, 1, None, 0, 8, 1e-4, "sgd"),
    seg(3, 2, None, 0, 4, 1e-0),
    seg(4, 2, 1, 4, 12, 1e-3),
    seg(5, 1, 4, 8, 12, 1e-3),
]


def test_surviving_ancestors_by_hand():
    assert surviving_ancestors(LINEAGE) == [
        {"step": 4, "alive": 3, "ancestors": 3},  # the copy made at 4 counts from step 5 on
        {"step": 8, "alive": 3, "ancestors": 2},  # members 0 and 2 (from 0), member 1 still its own
        {"step": 12, "alive": 3, "ancestors": 1},
    ]
    assert surviving_ancestors(LINEAGE, steps=[1, 5, 9]) == [
        {"step": 1, "alive": 3, "ancestors": 3},
        {"step": 5, "alive": 3, "ancestors": 2},
        {"step": 9, "alive": 3, "ancestors": 1},
    ]


def test_unfinished_segment_is_open_ended_and_order_does_not_matter():
    running = [dict(s) for s in reversed(LINEAGE)]
    running[0]["end_step"] = None  # segment 5 still training
    assert surviving_ancestors(running, steps=[20]) == [{"step": 20, "alive": 1, "ancestors": 1}]


def test_spread_by_hand():
    # lr unit positions: 1e-2 -> 0.5, 1e-4 -> 0, 1e0 -> 1, 1e-3 -> 0.25 (four decades)
    rows = hyperparameter_spread(LINEAGE, SPACE, steps=[4, 8, 12])
    assert rows[0]["spread"]["lr"] == pytest.approx(np.std([0.5, 0.0, 1.0]))
    assert rows[1]["spread"]["lr"] == pytest.approx(np.std([0.5, 0.0, 0.25]))
    assert rows[2]["spread"]["lr"] == pytest.approx(np.std([0.5, 0.25, 0.25]))
    # opt: adam, sgd, adam -> entropy of (2/3, 1/3) over log 2; then all adam.
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(2)
    assert rows[0]["spread"]["opt"] == pytest.approx(h)
    assert rows[2]["spread"]["opt"] == 0.0


def test_diversity_over_time_from_a_result_like_object():
    result = SimpleNamespace(segments=LINEAGE, experiment={"space": SPACE.to_json()})
    div = diversity_over_time(result)
    assert div["step"] == [4, 8, 12]
    assert div["ancestors"] == [3, 2, 1]
    assert div["alive"] == [3, 3, 3]
    assert div["spread"]["lr"][0] == pytest.approx(np.std([0.5, 0.0, 1.0]))
    assert diversity_over_time(LINEAGE, space=SPACE) == div
    with pytest.raises(ConfigError, match="needs the space"):
        diversity_over_time(LINEAGE)


def test_config_distance():
    a, b = {"lr": 1e-4, "opt": "adam"}, {"lr": 1e-0, "opt": "sgd"}
    assert config_distance(a, a, SPACE) == 0.0
    assert config_distance(a, b, SPACE) == pytest.approx(1.0)
    assert config_distance(a, {"lr": 1e-0, "opt": "adam"}, SPACE) == pytest.approx(math.sqrt(0.5))
    assert config_distance(a, b, SPACE) == config_distance(b, a, SPACE)


# -- the guard ------------------------------------------------------------------------------


def crowd(values, space_key="x"):
    return PopulationView([MemberView(i, 8, {space_key: v, "n": 3}, (float(i),)) for i, v in enumerate(values)])


GUARD_SPACE = Space({"x": Float(0.0, 1.0), "n": 3})


@pytest.mark.parametrize("explore", [Perturb(), Resample(0.25)])
def test_guard_keeps_every_proposal_at_least_min_distance_from_the_others(explore):
    # Members crowd around x = 0.5; member 0 copies member 3.
    view = crowd([0.1, 0.48, 0.5, 0.52, 0.55])
    guard = DiversityGuard(explore, min_distance=0.1)
    for seed in range(100):
        new = guard({"x": 0.52, "n": 3}, space=GUARD_SPACE, rng=np.random.default_rng(seed), population=view,
                    member_id=0)
        GUARD_SPACE.validate(new)
        gaps = [config_distance(new, m.config, GUARD_SPACE) for m in view.members if m.id != 0]
        assert min(gaps) >= 0.1


def test_without_the_guard_proposals_do_crowd():
    view = crowd([0.1, 0.48, 0.5, 0.52, 0.55])
    close = 0
    for seed in range(100):
        new = Perturb()({"x": 0.52, "n": 3}, space=GUARD_SPACE, rng=np.random.default_rng(seed), population=view,
                        member_id=0)
        close += min(config_distance(new, m.config, GUARD_SPACE) for m in view.members if m.id != 0) < 0.1
    assert close > 50


def test_guard_leaves_proposals_that_are_far_enough_alone():
    view = crowd([0.1, 0.9])
    new = DiversityGuard(Perturb(), min_distance=0.05)({"x": 0.5, "n": 3}, space=GUARD_SPACE,
                                                       rng=np.random.default_rng(0), population=view, member_id=0)
    assert new == Perturb()({"x": 0.5, "n": 3}, space=GUARD_SPACE, rng=np.random.default_rng(0), population=view,
                            member_id=0)


def test_guard_with_no_room_returns_the_farthest_valid_config():
    # Eleven members at every tenth: no point is 0.3 from all of them.
    view = crowd([i / 10 for i in range(11)])
    guard = DiversityGuard(Perturb(), min_distance=0.9, tries=5)
    new = guard({"x": 0.5, "n": 3}, space=GUARD_SPACE, rng=np.random.default_rng(1), population=view, member_id=0)
    GUARD_SPACE.validate(new)


def test_guard_ignores_failed_members_and_itself():
    members = [MemberView(0, 8, {"x": 0.5, "n": 3}), MemberView(1, 8, {"x": 0.5, "n": 3}, failed=True),
               MemberView(2, 8, {"x": 0.9, "n": 3})]
    guard = DiversityGuard(Resample(0.0, fallback=None), min_distance=0.1)
    new = guard({"x": 0.5, "n": 3}, space=GUARD_SPACE, rng=np.random.default_rng(0),
                population=PopulationView(members), member_id=0)
    assert new == {"x": 0.5, "n": 3}


def test_guard_serialises_and_forwards_the_data_window():
    guard = DiversityGuard(Resample(0.5), min_distance=0.2, tries=3)
    data = json.loads(json.dumps(guard.to_json()))
    assert data == {"kind": "diversity_guard", "explore": Resample(0.5).to_json(), "min_distance": 0.2, "tries": 3}
    assert explore_from_json(data) == guard
    assert pickle.loads(pickle.dumps(guard)) == guard
    strategy = PBT(interval=4, explore=guard)
    assert strategy_from_json(strategy.to_json()) == strategy
    assert guard.observations_needed == 0
    pb2 = pytest.importorskip("poptrain.algorithms.pb2")
    assert DiversityGuard(pb2.PB2(window=50)).observations_needed == 50
    guard.check_space(Space({"k": 1}))  # perturb can explore any space: nothing to check
    with pytest.raises(ConfigError, match="at least one tunable dimension"):
        DiversityGuard(pb2.PB2()).check_space(Space({"k": 1}))


@pytest.mark.parametrize("kwargs, name", [
    ({"explore": "perturb"}, "explore"), ({"min_distance": -0.1}, "min_distance"),
    ({"min_distance": 2}, "min_distance"), ({"tries": -1}, "tries"), ({"tries": 1.5}, "tries"),
])
def test_guard_bad_parameters(kwargs, name):
    with pytest.raises(ConfigError, match=f"'{name}' parameter of DiversityGuard"):
        DiversityGuard(**kwargs)


def test_docstring_examples():
    assert doctest.testmod(diversity_module, optionflags=doctest.ELLIPSIS).failed == 0
