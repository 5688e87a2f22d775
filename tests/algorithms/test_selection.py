import math
from collections import Counter

import numpy as np
import pytest

from poptrain.algorithms import (
    Latest,
    MeanLast,
    MemberView,
    PopulationView,
    Tournament,
    Truncation,
    TTest,
    quantile_size,
)
from poptrain.algorithms._stats import welch_greater
from poptrain.errors import ConfigError

NAN = math.nan


def member(i, *scores, **kw):
    return MemberView(id=i, step=10, config={"i": i}, scores=tuple(scores), **kw)


def population(scores, mode="max", overrides=None):
    """Members 0..n-1 with one score each; overrides maps id -> MemberView kwargs."""
    overrides = overrides or {}
    return PopulationView([member(i, s, **overrides.get(i, {})) for i, s in enumerate(scores)], mode=mode)


def choices(selection, member_id, pop, n=300, scorer=Latest()):
    rng = np.random.default_rng(0)
    return Counter(selection.select(member_id, pop, scorer, rng) for _ in range(n))


def test_quantile_size():
    assert [quantile_size(n, 0.25) for n in range(1, 11)] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert quantile_size(3, 0.5) == 1
    assert quantile_size(100, 0.2) == 20


# Truncation ----------------------------------------------------------------------


def test_truncation_bottom_copies_only_from_top():
    pop = population([float(i) for i in range(8)])  # ids 6, 7 top; 0, 1 bottom
    for bottom in (0, 1):
        assert set(choices(Truncation(0.25), bottom, pop)) == {6, 7}
    for middle_or_top in (2, 3, 4, 5, 6, 7):
        assert set(choices(Truncation(0.25), middle_or_top, pop)) == {None}


def test_truncation_in_min_mode_copies_the_lowest():
    pop = population([float(i) for i in range(8)], mode="min")
    assert set(choices(Truncation(0.25), 7, pop)) == {0, 1}
    assert set(choices(Truncation(0.25), 0, pop)) == {None}


def test_truncation_never_picks_itself_in_tiny_populations():
    pop = population([1.0, 2.0])
    assert set(choices(Truncation(0.5), 0, pop)) == {1}
    assert set(choices(Truncation(0.5), 1, pop)) == {None}
    assert set(choices(Truncation(0.25), 0, population([1.0]))) == {None}


def test_member_with_unusable_score_is_always_bottom():
    pop = population([NAN, NAN, NAN, 1.0, 2.0, 3.0, 4.0, 5.0])
    # member 2 is outside the two-member bottom by rank, yet has no usable score
    assert set(choices(Truncation(0.25), 2, pop)) == {6, 7}
    pop = PopulationView([member(0), *[member(i, float(i)) for i in range(1, 8)]])
    assert set(choices(Truncation(0.25), 0, pop)) == {6, 7}


@pytest.mark.parametrize("bad", [NAN, math.inf, -math.inf, None])
def test_unusable_scores_are_never_donors(bad):
    scores = [0.1, 0.2, 0.3, 0.4]
    members = [member(i, s) for i, s in enumerate(scores)] + [
        MemberView(id=4, step=10, config={}, scores=() if bad is None else (bad,))
    ]
    pop = PopulationView(members)
    for selection in (Truncation(0.5), Tournament(), TTest(k=2, fraction=0.5)):
        for m in range(4):
            assert 4 not in choices(selection, m, pop, n=100)


def test_member_without_checkpoint_or_failed_is_never_a_donor():
    pop = population([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], overrides={7: {"has_checkpoint": False}})
    assert set(choices(Truncation(0.25), 0, pop)) == {6}
    pop = population([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], overrides={7: {"failed": True}})
    # failed members leave the ranking: top two of the seven live ones are 5 and 6
    assert set(choices(Truncation(0.25), 0, pop)) == {5, 6}
    pop = population([0.0, 1.0], overrides={1: {"has_checkpoint": False}})
    assert set(choices(Truncation(0.5), 0, pop)) == {None}


def test_truncation_uses_the_scorer():
    # member 0 had one lucky report; averaged over three it is the worst
    members = [MemberView(0, 10, {}, (0.0, 0.0, 9.0)), MemberView(1, 10, {}, (4.0, 4.0, 4.0)),
               MemberView(2, 10, {}, (5.0, 5.0, 5.0)), MemberView(3, 10, {}, (6.0, 6.0, 6.0))]
    pop = PopulationView(members)
    assert set(choices(Truncation(0.25), 0, pop, scorer=Latest())) == {None}
    assert set(choices(Truncation(0.25), 0, pop, scorer=MeanLast(3))) == {3}


def test_truncation_picks_top_uniformly():
    counts = choices(Truncation(0.25), 0, population([float(i) for i in range(16)]), n=4000)
    assert set(counts) == {12, 13, 14, 15}
    assert min(counts.values()) > 850


@pytest.mark.parametrize("fraction", [0, 0.6, -0.1, "0.2", True])
def test_truncation_rejects_bad_fraction(fraction):
    with pytest.raises(ConfigError, match="'fraction' parameter of Truncation"):
        Truncation(fraction)


# Tournament ----------------------------------------------------------------------


def test_tournament_copies_a_strictly_better_opponent_only():
    pop = population([1.0, 2.0, 3.0, 1.0])
    assert set(choices(Tournament(), 0, pop)) == {1, 2, None}  # None: drew member 3 (a tie)
    assert set(choices(Tournament(), 2, pop)) == {None}
    assert set(choices(Tournament(), 1, pop)) == {2, None}


def test_tournament_in_min_mode():
    pop = population([1.0, 2.0], mode="min")
    assert set(choices(Tournament(), 1, pop)) == {0}
    assert set(choices(Tournament(), 0, pop)) == {None}


def test_tournament_member_without_score_loses_to_any_usable_donor():
    pop = population([NAN, 0.0])
    assert set(choices(Tournament(), 0, pop)) == {1}
    assert set(choices(Tournament(), 1, pop)) == {None}


def test_tournament_draws_opponents_uniformly():
    counts = choices(Tournament(), 0, population([0.0, 1.0, 2.0, 3.0]), n=3000)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 900


# T-test --------------------------------------------------------------------------


def history(i, scores, **kw):
    return MemberView(id=i, step=10, config={}, scores=tuple(scores), **kw)


def test_ttest_copies_when_clearly_better():
    g = np.random.default_rng(0)
    members = [history(0, g.normal(0.0, 0.1, 10)), history(1, g.normal(1.0, 0.1, 10))]
    assert set(choices(TTest(k=10, fraction=0.5), 0, PopulationView(members))) == {1}
    assert set(choices(TTest(k=10, fraction=0.5), 1, PopulationView(members))) == {None}
    assert set(choices(TTest(k=10, fraction=0.5), 1, PopulationView(members, mode="min"))) == {0}


def test_ttest_keeps_when_the_difference_is_noise():
    g = np.random.default_rng(1)
    members = [history(0, g.normal(0.0, 1.0, 10)), history(1, g.normal(0.05, 1.0, 10))]
    pop = PopulationView(members)
    p = welch_greater(list(members[1].scores), list(members[0].scores))
    assert p > 0.05
    assert set(choices(TTest(k=10, fraction=0.5), 0, pop)) == {None}


def test_ttest_uses_only_the_last_k_scores():
    # long ago member 0 was far worse; recently both are the same
    members = [history(0, [-100.0] * 20 + [1.0, 2.0, 1.0, 2.0]), history(1, [1.0, 2.0, 1.0, 2.5] * 6)]
    assert set(choices(TTest(k=4, fraction=0.5), 0, PopulationView(members))) == {None}
    assert set(choices(TTest(k=24, fraction=0.5), 0, PopulationView(members))) == {1}


def test_ttest_needs_two_scores_each_but_replaces_a_broken_member():
    better = history(1, [5.0, 5.1, 5.2])
    assert set(choices(TTest(k=3, fraction=0.5), 0, PopulationView([history(0, [1.0]), better]))) == {None}
    assert set(choices(TTest(k=3, fraction=0.5), 0, PopulationView([history(0, [1.0, NAN]), better]))) == {1}
    assert set(choices(TTest(k=3, fraction=0.5), 0, PopulationView([history(0, []), better]))) == {1}
    short = history(1, [5.0])
    assert set(choices(TTest(k=3, fraction=0.5), 0, PopulationView([history(0, [1.0, 1.1]), short]))) == {None}


def test_ttest_candidates_come_from_the_top_fraction():
    g = np.random.default_rng(2)
    members = [history(i, g.normal(i, 0.1, 10)) for i in range(8)]
    assert set(choices(TTest(k=10, fraction=0.25), 0, PopulationView(members))) == {6, 7}


@pytest.mark.parametrize("kwargs", [{"k": 1}, {"alpha": 0}, {"alpha": 1.5}, {"fraction": 0.9}])
def test_ttest_rejects_bad_parameters(kwargs):
    with pytest.raises(ConfigError, match=f"'{next(iter(kwargs))}' parameter of TTest"):
        TTest(**kwargs)


def test_welch_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    g = np.random.default_rng(3)
    for _ in range(200):
        na, nb = g.integers(2, 15, size=2)
        a, b = g.normal(g.normal(), g.uniform(0.1, 2), na), g.normal(0, g.uniform(0.1, 2), nb)
        expected = stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
        assert welch_greater(a.tolist(), b.tolist()) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_welch_without_spread():
    assert welch_greater([2.0, 2.0], [1.0, 1.0]) == 0.0
    assert welch_greater([1.0, 1.0], [1.0, 1.0]) == 1.0
