"""PB2 as a pure explore: valid proposals, a model that finds the optimum, pending points, seeds, errors."""

import doctest
import json
import logging
import math
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")

import poptrain.algorithms.pb2 as pb2_module  # noqa: E402
import poptrain.algorithms.pb2_encoding as encoding_module  # noqa: E402
import poptrain.algorithms.pb2_kernel as kernel_module  # noqa: E402
from poptrain.algorithms import (  # noqa: E402
    PBT,
    Exploit,
    MemberView,
    Observation,
    PopulationView,
    Perturb,
    Resample,
    Truncation,
    explore_from_json,
    strategy_from_json,
)
from poptrain.algorithms.pb2 import PB2  # noqa: E402
from poptrain.errors import ConfigError  # noqa: E402
from poptrain.space import Choice, Dimension, Float, Int, Ordered, Space  # noqa: E402


def synthetic(space, gain, *, seed=0, members=8, rounds=6, interval=4, noise=0.05, mode="max"):
    """A population whose score changes by ``interval * gain(config)`` (+ noise) per interval.

    Every member tries a fresh random config each interval, so the score a
    member has and the config it trains with are unrelated, as PB2 assumes
    its inputs can be.
    """
    rng = np.random.default_rng(seed)
    sign = 1.0 if mode == "max" else -1.0
    score = rng.random(members)
    obs = []
    configs = [space.sample(rng) for _ in range(members)]
    for k in range(rounds):
        configs = [space.sample(rng) for _ in range(members)]
        for i in range(members):
            new = score[i] + sign * (interval * gain(configs[i]) + rng.normal(0.0, noise))
            obs.append(Observation(i, k * interval, (k + 1) * interval, float(score[i]), float(new), configs[i]))
            score[i] = new
    view = PopulationView(
        [MemberView(i, rounds * interval, configs[i], (float(score[i]),)) for i in range(members)],
        mode=mode, observations=obs,
    )
    best = int(np.argmax(sign * score))
    worst = int(np.argmin(sign * score))
    return view, configs[best], worst


def propose(explore, config, space, view, member_id, seed=0):
    return explore(config, space=space, rng=np.random.default_rng(seed), population=view, member_id=member_id)


LR_SPACE = Space({"lr": Float(0.0, 1.0), "fixed": 3})


def peak_at_07(config):
    return 1.0 - 4.0 * (config["lr"] - 0.7) ** 2


# -- the model finds what random search would not -------------------------------------------


def test_proposals_land_near_the_optimum_far_more_often_than_random():
    hits = 0
    for seed in range(12):
        view, donor, worst = synthetic(LR_SPACE, peak_at_07, seed=seed)
        new = propose(PB2(), donor, LR_SPACE, view, worst, seed)
        hits += abs(new["lr"] - 0.7) < 0.1
        assert new["fixed"] == 3
    # A uniform draw lands within 0.1 of 0.7 one time in five.
    assert hits >= 10


def test_mode_min_maximises_the_decrease():
    hits = 0
    for seed in range(8):
        view, donor, worst = synthetic(LR_SPACE, peak_at_07, seed=seed, mode="min")
        new = propose(PB2(), donor, LR_SPACE, view, worst, seed)
        hits += abs(new["lr"] - 0.7) < 0.1
    assert hits >= 6


def test_mixed_space_finds_the_best_category_and_log_scaled_value():
    space = Space({"lr": Float(1e-4, 1.0, log=True), "m": Float(0.0, 1.0), "opt": Choice(["a", "b", "c"]),
                   "bs": Ordered([16, 32, 64]), "layers": Int(1, 8)})

    def gain(c):
        return 1 - (math.log10(c["lr"]) + 2) ** 2 / 4 - (c["m"] - 0.3) ** 2 + (0.5 if c["opt"] == "b" else 0.0)

    found = []
    for seed in range(6):
        view, donor, worst = synthetic(space, gain, seed=seed, noise=0.2)
        new = propose(PB2(), donor, space, view, worst, seed)
        space.validate(new)
        found.append(gain(new))
    # The best possible gain is 1.5; a uniform draw averages about 0.7.
    assert np.median(found) > 1.3


# -- valid values of the right type ----------------------------------------------------------

DIMENSIONS = st.sampled_from([
    Float(0.0, 1.0), Float(1e-5, 1e-1, log=True), Float(-3.0, 2.0),
    Int(1, 10), Int(1, 1024, log=True), Int(-5, 5),
    Ordered([16, 32, 64, 128]), Ordered(["s", "m", "l"]),
    Choice(["adam", "sgd", "rmsprop"]), Choice([True, False]), Choice([1, 2.5, "x"]),
])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dims=st.lists(DIMENSIONS, min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1),
       members=st.integers(2, 6), rounds=st.integers(0, 4))
def test_proposals_lie_in_the_space_with_the_declared_types(dims, seed, members, rounds):
    space = Space({f"d{i}": d for i, d in enumerate(dims)} | {"const": "keep"})
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=len(dims))

    def gain(c):
        return float(sum(w * (hash(repr(c[f"d{i}"])) % 7) for i, w in enumerate(weights)))

    view, donor, worst = synthetic(space, gain, seed=seed, members=members, rounds=rounds)
    new = propose(PB2(candidates=32, iterations=3), donor, space, view, worst, seed)
    space.validate(new)
    assert new["const"] == "keep"
    for path, dim in space.dimensions.items():
        value = space.get(new, path)
        if isinstance(dim, Float):
            assert type(value) is float
        elif isinstance(dim, Int):
            assert type(value) is int
        else:
            assert any(type(value) is type(v) and value == v for v in dim.values)


# -- pending points, seeds ----------------------------------------------------------------


def test_pending_point_makes_the_second_proposal_of_a_round_differ():
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})

    def flat(c):
        return 0.0

    view, donor, _ = synthetic(space, flat, seed=3, members=4, rounds=3)
    explore = PB2(ucb_beta=4.0)
    first = propose(explore, donor, space, view, 0, seed=7)

    # Member 0 now trains with the first proposal: nothing is known about it yet.
    members = [MemberView(0, m.step, first, m.scores) if m.id == 0 else m for m in view.members]
    with_pending = PopulationView(members, view.mode, view.observations)
    second = propose(explore, donor, space, with_pending, 1, seed=7)
    # Without it (member 0 keeps a config already observed) the same seed gives the same point.
    again = propose(explore, donor, space, view, 1, seed=7)

    gap = math.dist((first["x"], first["y"]), (second["x"], second["y"]))
    assert again == first
    assert gap > 0.05, (first, second)


def test_same_seed_same_proposal_and_seeds_differ():
    view, donor, worst = synthetic(LR_SPACE, peak_at_07, seed=1)
    a = propose(PB2(), donor, LR_SPACE, view, worst, seed=5)
    b = propose(PB2(), donor, LR_SPACE, view, worst, seed=5)
    assert a == b
    # The search is random: other seeds end at other points near the same optimum.
    proposals = {propose(PB2(), donor, LR_SPACE, view, worst, seed=s)["lr"] for s in range(5)}
    assert len(proposals) > 1


def test_observation_order_does_not_matter():
    view, donor, worst = synthetic(LR_SPACE, peak_at_07, seed=2)
    shuffled = PopulationView(view.members, view.mode, tuple(reversed(view.observations)))
    assert propose(PB2(), donor, LR_SPACE, view, worst, 3) == propose(PB2(), donor, LR_SPACE, shuffled, worst, 3)


def test_window_bounds_the_data_and_is_what_the_worker_fetches():
    explore = PB2(window=10)
    assert explore.observations_needed == 10
    view, donor, worst = synthetic(LR_SPACE, peak_at_07, seed=0, rounds=20)
    seen = []
    real = pb2_module._fit

    def spy(X, y, *args):
        seen.append(len(y))
        return real(X, y, *args)

    pb2_module._fit, saved = spy, pb2_module._fit
    try:
        propose(explore, donor, LR_SPACE, view, worst)
    finally:
        pb2_module._fit = saved
    assert seen == [10]


# -- fallbacks ------------------------------------------------------------------------------


def test_numerical_failure_falls_back_to_perturb_and_logs_why(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("matrix is not positive definite")

    monkeypatch.setattr(pb2_module, "_fit", broken)
    view, donor, worst = synthetic(LR_SPACE, peak_at_07)
    with caplog.at_level(logging.WARNING, logger="poptrain.algorithms.pb2"):
        new = propose(PB2(), donor, LR_SPACE, view, worst, seed=4)
    LR_SPACE.validate(new)
    assert new == propose(Perturb(), donor, LR_SPACE, view, worst, seed=4)
    assert "fit failed" in caplog.text and "not positive definite" in caplog.text


def test_non_finite_prediction_falls_back(monkeypatch, caplog):
    real = pb2_module._fit

    def nan_model(*args):
        gp = real(*args)
        gp.alpha_ = gp.alpha_ * np.nan
        return gp

    monkeypatch.setattr(pb2_module, "_fit", nan_model)
    view, donor, worst = synthetic(LR_SPACE, peak_at_07)
    with caplog.at_level(logging.WARNING, logger="poptrain.algorithms.pb2"):
        new = propose(PB2(fallback=Resample(1.0, fallback=None)), donor, LR_SPACE, view, worst)
    LR_SPACE.validate(new)
    assert "not finite" in caplog.text


def test_too_little_data_uses_the_fallback_quietly(caplog):
    # First intervals have no start score: they are not data.
    view = PopulationView(
        [MemberView(0, 4, {"lr": 0.2, "fixed": 3}, (0.1,)), MemberView(1, 4, {"lr": 0.6, "fixed": 3}, (0.3,))],
        observations=[Observation(0, 0, 4, math.nan, 0.1, {"lr": 0.2, "fixed": 3}),
                      Observation(1, 0, 4, math.nan, 0.3, {"lr": 0.6, "fixed": 3})],
    )
    with caplog.at_level(logging.WARNING):
        new = propose(PB2(), {"lr": 0.6, "fixed": 3}, LR_SPACE, view, 0, seed=1)
    assert new["lr"] in (0.48, 0.72)
    assert caplog.text == ""


# -- bad input ----------------------------------------------------------------------------


class Wavelength(Dimension):
    kind = "wavelength"

    def sample(self, rng):
        return 500.0

    def perturb(self, value, rng, factor):
        return value

    def contains(self, value):
        return value == 500.0

    def to_unit(self, value):
        return 0.5

    def from_unit(self, u):
        return 500.0

    def to_json(self):
        return {"type": self.kind}


@pytest.mark.parametrize("spec, words", [
    ({"w": Wavelength(), "lr": Float(0.0, 1.0)}, "cannot model the dimension 'w' of type Wavelength"),
    ({"opt": Choice(["adam"]), "bs": Ordered([32]), "epochs": 10}, "at least one tunable dimension"),
    ({"epochs": 10}, "at least one tunable dimension"),
])
def test_spaces_pb2_cannot_model_raise_a_clear_error(spec, words):
    space = Space(spec)
    with pytest.raises(ConfigError, match=words):
        PB2.check_space(space)
    with pytest.raises(ConfigError, match=words):
        propose(PB2(), {k: (v.sample(np.random.default_rng(0)) if isinstance(v, Dimension) else v)
                        for k, v in spec.items()}, space, PopulationView([MemberView(0, 4, {})]), 0)


@pytest.mark.parametrize("kwargs, name", [
    ({"ucb_beta": -1.0}, "ucb_beta"), ({"ucb_beta": math.inf}, "ucb_beta"), ({"ucb_beta": True}, "ucb_beta"),
    ({"window": 1}, "window"), ({"window": 10.5}, "window"), ({"restarts": 0}, "restarts"),
    ({"candidates": 0}, "candidates"), ({"iterations": -1}, "iterations"),
    ({"epsilon_bounds": (0.0, 0.5)}, "epsilon_bounds"), ({"epsilon_bounds": (0.3, 0.1)}, "epsilon_bounds"),
    ({"epsilon_bounds": (0.1, 1.0)}, "epsilon_bounds"), ({"epsilon_bounds": 0.1}, "epsilon_bounds"),
    ({"fallback": "perturb"}, "fallback"),
])
def test_bad_parameters_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=f"'{name}' parameter of PB2"):
        PB2(**kwargs)


# -- serialisation ------------------------------------------------------------------------


def test_json_round_trip_and_pickle():
    explore = PB2(ucb_beta=2.0, window=64, epsilon_bounds=(0.01, 0.3), restarts=3, candidates=50, iterations=4,
                  fallback=Resample(0.5))
    data = json.loads(json.dumps(explore.to_json()))
    assert data["kind"] == "pb2" and data["window"] == 64 and data["epsilon_bounds"] == [0.01, 0.3]
    assert explore_from_json(data) == explore
    assert pickle.loads(pickle.dumps(explore)) == explore
    assert explore_from_json(PB2().to_json()) == PB2()
    strategy = PBT(interval=4, selection=Truncation(0.25), explore=explore)
    assert strategy_from_json(json.loads(json.dumps(strategy.to_json()))) == strategy


def test_fixed_epsilon_when_bounds_are_equal():
    view, donor, worst = synthetic(LR_SPACE, peak_at_07, seed=0)
    new = propose(PB2(epsilon_bounds=(0.2, 0.2)), donor, LR_SPACE, view, worst)
    LR_SPACE.validate(new)


@pytest.mark.parametrize("module", [pb2_module, kernel_module, encoding_module])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_space_errors_come_at_experiment_construction_and_compose_passes_data():
    import poptrain as pt
    from poptrain.algorithms import PBT, Compose, Perturb
    from poptrain.algorithms.serialize import strategy_from_json
    from poptrain.errors import ConfigError
    from poptrain.space import Choice

    class T:
        def __init__(self, c): ...
        def step(self): return {"s": 0.0}
        def state_dict(self): return {}
        def load_state_dict(self, s): ...

    with pytest.raises(ConfigError, match="tunable"):
        pt.Experiment(name="x", trainable=T, space={"a": 1}, metric="s", strategy=PBT(explore=PB2()))
    composed = Compose(PB2(window=40), Perturb())
    assert composed.observations_needed == 40
    with pytest.raises(ConfigError):
        pt.Experiment(name="x", trainable=T, space={"a": 1}, metric="s", strategy=PBT(explore=composed))
    pt.Experiment(name="x", trainable=T, space={"c": Choice(["a", "b"])}, metric="s", strategy=PBT(explore=composed))
    assert strategy_from_json(PBT(explore=composed).to_json()) == PBT(explore=composed)


def test_a_generation_fits_its_gp_once_and_decides_as_if_each_fitted_alone(monkeypatch):
    view, _, _ = synthetic(LR_SPACE, peak_at_07, members=16)
    strategy = PBT(interval=4, selection=Truncation(0.25), explore=PB2())
    once, fits = pb2_module._fit_once, []

    def counted(*args):
        fits.append(1)
        return once(*args)

    monkeypatch.setattr(pb2_module, "_fit_once", counted)
    pb2_module.clear_shared_fits()
    shared = strategy.decide_generation(view, space=LR_SPACE, rng=np.random.default_rng(3))
    exploits = [d for d in shared.values() if isinstance(d, Exploit)]
    assert len(exploits) == 4 and len(fits) == 1
    # Every decision fitting its own GP, from scratch, gives the same generation.
    monkeypatch.setattr(pb2_module, "_fit", lambda X, y, bounds, groups: once(X, y, bounds, groups))
    alone = strategy.decide_generation(view, space=LR_SPACE, rng=np.random.default_rng(3))
    assert alone == shared
    assert len({json.dumps(d.config, sort_keys=True) for d in exploits}) == 4  # pending points keep them apart
