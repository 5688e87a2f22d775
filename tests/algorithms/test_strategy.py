import math
import pickle
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poptrain.algorithms import (
    PBT,
    Continue,
    CustomExplore,
    Exploit,
    Latest,
    MemberView,
    Perturb,
    PopulationView,
    Resample,
    Selection,
    Tournament,
    Truncation,
    TTest,
    rng_for,
)
from poptrain.algorithms.rng import ASYNC, GENERATION
from poptrain.errors import ConfigError
from poptrain.space import Choice, Float, Int, Space

SPACE = Space({"lr": Float(1e-4, 1.0, log=True), "layers": Int(1, 8), "act": Choice(["relu", "tanh"]), "epochs": 3})


def config(i):
    return {"lr": 10.0 ** -(1 + i % 4), "layers": 1 + i % 8, "act": ["relu", "tanh"][i % 2], "epochs": 3}


def population(n=8, step=10, mode="max", scores=None):
    scores = scores if scores is not None else [float(i) for i in range(n)]
    return PopulationView([MemberView(i, step, config(i), (s,)) for i, s in enumerate(scores)], mode=mode)


def test_defaults():
    pbt = PBT()
    assert (pbt.interval, pbt.burn_in, pbt.synchronous) == (5, 0, False)
    assert pbt.selection == Truncation(0.25)
    assert pbt.explore == Resample(0.25, Perturb())
    assert pbt.scorer == Latest()


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"interval": 0}, "'interval'"),
        ({"interval": 2.5}, "'interval'"),
        ({"interval": True}, "'interval'"),
        ({"burn_in": -1}, "'burn_in'"),
        ({"selection": "truncation"}, "'selection'"),
        ({"explore": Truncation()}, "'explore'"),
        ({"scorer": max}, "'scorer'"),
        ({"synchronous": "yes"}, "'synchronous'"),
    ],
)
def test_bad_parameters(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        PBT(**kwargs)


def test_ready_points():
    pbt = PBT(interval=5, burn_in=12)
    assert [s for s in range(31) if pbt.is_ready(s)] == [5, 10, 15, 20, 25, 30]
    assert [s for s in range(31) if pbt.can_exploit(s)] == [15, 20, 25, 30]
    assert [pbt.next_ready(s) for s in (-3, 0, 1, 4, 5, 6, 10)] == [5, 5, 5, 5, 10, 10, 15]
    assert PBT(interval=1).next_ready(7) == 8


def test_no_exploit_during_burn_in():
    pbt = PBT(interval=5, burn_in=20)
    for step in (5, 10, 15):
        decision = pbt.decide(0, population(step=step), space=SPACE, rng=np.random.default_rng(0))
        assert isinstance(decision, Continue) and "burn-in" in decision.reason
        assert all(isinstance(d, Continue) for d in pbt.decide_generation(
            population(step=step), space=SPACE, rng=np.random.default_rng(0)).values())
    assert isinstance(pbt.decide(0, population(step=20), space=SPACE, rng=np.random.default_rng(0)), Exploit)


def test_no_decision_between_ready_points():
    decision = PBT(interval=5).decide(0, population(step=7), space=SPACE, rng=np.random.default_rng(0))
    assert isinstance(decision, Continue) and "not a ready step" in decision.reason


def test_exploit_explores_the_donors_config():
    space = Space({"x": Float(0, 1000)})
    members = [MemberView(0, 10, {"x": 1.0}, (0.0,)), MemberView(1, 10, {"x": 100.0}, (1.0,))]
    pbt = PBT(interval=10, selection=Truncation(0.5), explore=Perturb())
    seen = set()
    for seed in range(50):
        decision = pbt.decide(0, PopulationView(members), space=space, rng=np.random.default_rng(seed))
        assert isinstance(decision, Exploit) and decision.donor == 1
        seen.add(decision.config["x"])
    assert seen == {80.0, 120.0}
    assert members[1].config == {"x": 100.0}


def test_decisions_honour_selection_and_validity():
    pbt = PBT(interval=10, selection=Truncation(0.25))
    pop = population(8)
    for seed in range(30):
        for member in range(8):
            decision = pbt.decide(member, pop, space=SPACE, rng=np.random.default_rng(seed))
            if member in (0, 1):
                assert isinstance(decision, Exploit) and decision.donor in (6, 7)
                SPACE.validate(decision.config)
                assert decision.config["epochs"] == 3
                assert "copies member" in decision.reason
            else:
                assert isinstance(decision, Continue)


def test_unusable_and_checkpointless_members_are_never_donors():
    scores = [0.0, math.nan, math.inf, -math.inf, 0.5, 0.6, 0.7, 0.8]
    members = [MemberView(i, 10, config(i), (s,) if i != 3 else ()) for i, s in enumerate(scores)]
    members[7] = MemberView(7, 10, config(7), (0.8,), has_checkpoint=False)
    pop = PopulationView(members)
    for selection in (Truncation(0.5), Tournament(), TTest(k=2, fraction=0.5)):
        pbt = PBT(interval=10, selection=selection)
        for seed in range(40):
            for member in range(8):
                d = pbt.decide(member, pop, space=SPACE, rng=np.random.default_rng(seed))
                if isinstance(d, Exploit):
                    assert d.donor in (0, 4, 5, 6) and d.donor != member


def test_mode_min():
    pbt = PBT(interval=10, selection=Truncation(0.25))
    d = pbt.decide(7, population(8, mode="min"), space=SPACE, rng=np.random.default_rng(0))
    assert isinstance(d, Exploit) and d.donor in (0, 1)
    assert isinstance(pbt.decide(0, population(8, mode="min"), space=SPACE, rng=np.random.default_rng(0)), Continue)


def test_failed_member_continues():
    members = list(population(4).members)
    members[0] = MemberView(0, 10, config(0), (0.0,), failed=True)
    d = PBT(interval=10).decide(0, PopulationView(members), space=SPACE, rng=np.random.default_rng(0))
    assert isinstance(d, Continue)


def test_same_seed_same_decisions():
    pbt = PBT(interval=10, selection=Tournament(), explore=Resample(0.5))
    pop = population(8, scores=list(np.random.default_rng(5).normal(size=8)))

    def decisions(seed):
        return [pbt.decide(m, pop, space=SPACE, rng=rng_for(seed, ASYNC, m, 10)) for m in range(8)]

    assert decisions(1) == decisions(1)
    assert any(decisions(1) != decisions(s) for s in range(2, 6))


@pytest.mark.parametrize("selection", [Truncation(0.25), Tournament(), TTest(k=2, fraction=0.5)])
def test_generation_is_independent_of_member_order(selection):
    g = np.random.default_rng(11)
    members = [MemberView(i, 10, config(i), tuple(g.normal(i / 4, 0.3, 3))) for i in range(10)]
    pbt = PBT(interval=10, selection=selection, synchronous=True)
    expected = pbt.decide_generation(PopulationView(members), space=SPACE, rng=rng_for(3, GENERATION, 10))
    assert any(isinstance(d, Exploit) for d in expected.values())
    assert sorted(expected) == list(range(10))
    for _ in range(20):
        shuffled = [members[i] for i in g.permutation(10)]
        got = pbt.decide_generation(PopulationView(shuffled), space=SPACE, rng=rng_for(3, GENERATION, 10))
        assert got == expected


def test_generation_never_chains_exploits():
    g = np.random.default_rng(0)
    pbt = PBT(interval=10, selection=Tournament(), synchronous=True)
    for seed in range(50):
        pop = population(6, scores=list(g.normal(size=6)))
        decisions = pbt.decide_generation(pop, space=SPACE, rng=np.random.default_rng(seed))
        exploiters = {m for m, d in decisions.items() if isinstance(d, Exploit)}
        donors = {d.donor for d in decisions.values() if isinstance(d, Exploit)}
        assert exploiters and not exploiters & donors
        for m, d in decisions.items():
            if isinstance(d, Exploit):
                assert d.donor != m and pop.member(m).latest < pop.member(d.donor).latest


def test_generation_with_truncation_matches_async_rule():
    decisions = PBT(interval=10, synchronous=True).decide_generation(population(8), space=SPACE,
                                                                     rng=np.random.default_rng(0))
    assert {m for m, d in decisions.items() if isinstance(d, Exploit)} == {0, 1}
    assert {d.donor for d in decisions.values() if isinstance(d, Exploit)} <= {6, 7}


def test_generation_needs_one_step_but_ignores_failed_members():
    members = list(population(4).members)
    members[2] = MemberView(2, 15, config(2), (2.0,))
    with pytest.raises(ConfigError, match=r"steps \[10, 15\]"):
        PBT(interval=5).decide_generation(PopulationView(members), space=SPACE, rng=np.random.default_rng(0))
    members[2] = MemberView(2, 5, config(2), (2.0,), failed=True)
    decisions = PBT(interval=5).decide_generation(PopulationView(members), space=SPACE, rng=np.random.default_rng(0))
    assert isinstance(decisions[2], Continue)
    with pytest.raises(ConfigError, match="unique"):
        PBT().decide_generation(PopulationView([members[0], members[0]]), space=SPACE, rng=np.random.default_rng(0))


@dataclass(frozen=True)
class SelfCopy(Selection):
    kind: ClassVar[str] = "self_copy"

    def select(self, member_id, population, scorer, rng):
        return member_id


def test_a_selection_that_breaks_the_rules_is_caught():
    with pytest.raises(ConfigError, match="chose member 0 as donor for member 0"):
        PBT(interval=10, selection=SelfCopy()).decide(0, population(4), space=SPACE, rng=np.random.default_rng(0))


def scale_lr(config, space, rng):
    return {**config, "lr": min(1.0, config["lr"] * 3)}


def test_strategies_pickle():
    for pbt in (PBT(), PBT(interval=5, burn_in=5, selection=TTest(k=2), explore=CustomExplore(scale_lr), synchronous=True)):
        back = pickle.loads(pickle.dumps(pbt))
        assert back == pbt
        pop = population(8)
        assert back.decide(0, pop, space=SPACE, rng=np.random.default_rng(0)) == pbt.decide(
            0, pop, space=SPACE, rng=np.random.default_rng(0))


def test_pickled_strategy_still_exploits():
    pbt = pickle.loads(pickle.dumps(PBT(interval=5, explore=CustomExplore(scale_lr))))
    decision = pbt.decide(0, population(8), space=SPACE, rng=np.random.default_rng(0))
    assert isinstance(decision, Exploit)
    assert decision.config["lr"] == pytest.approx(min(1.0, 3 * population(8).member(decision.donor).config["lr"]))

score_values = st.one_of(st.floats(-10, 10), st.sampled_from([math.nan, math.inf, -math.inf]))


@st.composite
def populations(draw):
    n = draw(st.integers(1, 10))
    members = [
        MemberView(
            id=i,
            step=10,
            config=SPACE.sample(np.random.default_rng(draw(st.integers(0, 1000)))),
            scores=tuple(draw(st.lists(score_values, max_size=4))),
            has_checkpoint=draw(st.booleans()) or draw(st.booleans()),
            failed=draw(st.integers(0, 5)) == 0,
        )
        for i in range(n)
    ]
    return PopulationView(members, mode=draw(st.sampled_from(["max", "min"])))


selections = st.one_of(
    st.builds(Truncation, st.floats(0.05, 0.5)), st.just(Tournament()), st.builds(TTest, st.integers(2, 4))
)


def assert_valid_exploit(pop, member_id, decision):
    if isinstance(decision, Exploit):
        donor = pop.member(decision.donor)
        assert decision.donor != member_id
        assert donor.has_checkpoint and not donor.failed and math.isfinite(donor.scores[-1])
        SPACE.validate(decision.config)


@settings(max_examples=200, deadline=None)
@given(pop=populations(), selection=selections, seed=st.integers(0, 2**32 - 1))
def test_any_population_gives_valid_decisions(pop, selection, seed):
    pbt = PBT(interval=10, selection=selection)
    for m in pop.members:
        assert_valid_exploit(pop, m.id, pbt.decide(m.id, pop, space=SPACE, rng=np.random.default_rng(seed)))
    decisions = pbt.decide_generation(pop, space=SPACE, rng=np.random.default_rng(seed))
    assert sorted(decisions) == sorted(m.id for m in pop.members)
    for member_id, decision in decisions.items():
        assert_valid_exploit(pop, member_id, decision)
    exploiters = {m for m, d in decisions.items() if isinstance(d, Exploit)}
    assert not exploiters & {d.donor for d in decisions.values() if isinstance(d, Exploit)}
