import itertools
import math

import pytest

from poptrain.algorithms import Latest, MeanLast, MemberView, PopulationView, donors, ranked, usable
from poptrain.errors import ConfigError

NAN, INF = math.nan, math.inf


def member(i, *scores, **kw):
    return MemberView(id=i, step=10, config={}, scores=tuple(scores), **kw)


def test_usable():
    assert usable(0.0) and usable(-3) and usable(1e308)
    for bad in (NAN, INF, -INF, None, "1.0", True):
        assert not usable(bad)


def test_latest_and_mean_last():
    view = member(0, 1.0, 2.0, 6.0)
    assert Latest()(view) == 6.0
    assert MeanLast(2)(view) == 4.0
    assert MeanLast(10)(view) == 3.0
    assert math.isnan(Latest()(member(0)))
    assert math.isnan(MeanLast(3)(member(0)))
    assert math.isnan(MeanLast(2)(member(0, 1.0, NAN)))
    assert not usable(MeanLast(2)(member(0, INF, 1.0)))


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_mean_last_rejects_bad_k(k):
    with pytest.raises(ConfigError, match="'k' parameter of MeanLast"):
        MeanLast(k)


def test_ranked_max_and_min():
    members = [member(0, 0.5), member(1, 0.9), member(2, 0.1)]
    assert [m.id for m in ranked(PopulationView(members, mode="max"), Latest())] == [1, 0, 2]
    assert [m.id for m in ranked(PopulationView(members, mode="min"), Latest())] == [2, 0, 1]


@pytest.mark.parametrize("mode", ["max", "min"])
def test_unusable_scores_rank_worst_in_either_mode(mode):
    members = [member(0, NAN), member(1, 0.5), member(2, INF), member(3), member(4, -INF), member(5, 0.7)]
    order = [m.id for m in ranked(PopulationView(members, mode=mode), Latest())]
    assert order[:2] == ([5, 1] if mode == "max" else [1, 5])
    assert order[2:] == [0, 2, 3, 4]  # unusable, by id


def test_ties_broken_by_id_whatever_the_input_order():
    members = [member(i, 1.0) for i in range(5)]
    for perm in itertools.permutations(members):
        assert [m.id for m in ranked(PopulationView(list(perm)), Latest())] == [0, 1, 2, 3, 4]


def test_donors_need_score_checkpoint_and_life():
    members = [
        member(0, 0.9, has_checkpoint=False),
        member(1, 0.8, failed=True),
        member(2, NAN),
        member(3),
        member(4, 0.1),
        member(5, 0.5),
    ]
    assert [m.id for m in donors(PopulationView(members), Latest())] == [5, 4]


def test_bad_mode_is_rejected():
    with pytest.raises(ConfigError, match="'maximize'"):
        ranked(PopulationView([member(0, 1.0)], mode="maximize"), Latest())
