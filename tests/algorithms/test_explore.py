import math

import numpy as np
import pytest

from poptrain.algorithms import Compose, CustomExplore, Perturb, PopulationView, Resample
from poptrain.errors import ConfigError, SpaceError
from poptrain.space import Choice, Float, Int, Ordered, Space

EMPTY = PopulationView([])


def run(explore, config, space, seed=0):
    return explore(config, space=space, rng=np.random.default_rng(seed), population=EMPTY, member_id=0)


def many(explore, config, space, n=200):
    return [run(explore, config, space, seed) for seed in range(n)]


# Ray Tune's scenarios, through the explore objects ----------------------------------


def test_perturb_continuous_value_by_each_factor():
    space = Space({"x": Float(0, 1000)})
    assert {c["x"] for c in many(Perturb(), {"x": 100.0}, space)} == {80.0, 120.0}


@pytest.mark.parametrize("start, expected", [(4, {3, 8}), (3, {3, 4}), (10, {8, 10})])
def test_perturb_ordered_moves_to_neighbours(start, expected):
    space = Space({"x": Ordered([3, 4, 8, 10])})
    assert {c["x"] for c in many(Perturb(), {"x": start}, space)} == expected


def test_perturb_value_not_in_ordered_list_becomes_any_element():
    space = Space({"x": Ordered([3, 4, 8, 10])})
    assert {c["x"] for c in many(Perturb(), {"x": 5}, space)} == {3, 4, 8, 10}


def test_resample_probability_one_draws_from_the_distribution():
    space = Space({"x": Float(0.0, 1.0), "n": Int(1, 1000), "c": Choice(["a", "b", "c"])})
    configs = many(Resample(probability=1.0), {"x": 0.5, "n": 500, "c": "a"}, space, n=100)
    xs = [c["x"] for c in configs]
    assert all(0.0 <= x <= 1.0 for x in xs)
    assert len(set(xs)) == 100  # not a perturbation of 0.5: those give two values
    assert min(xs) < 0.2 and max(xs) > 0.8
    assert len({c["n"] for c in configs}) > 80
    assert {c["c"] for c in configs} == {"a", "b", "c"}


def test_resample_probability_zero_is_the_fallback():
    space = Space({"x": Float(0, 1000)})
    assert {c["x"] for c in many(Resample(0.0), {"x": 100.0}, space)} == {80.0, 120.0}
    assert {c["x"] for c in many(Resample(0.0, fallback=None), {"x": 100.0}, space)} == {100.0}


def test_resample_mixes_per_dimension():
    space = Space({f"x{i}": Float(0, 1000) for i in range(4)})
    configs = many(Resample(0.5), {f"x{i}": 100.0 for i in range(4)}, space, n=200)
    values = [v for c in configs for v in c.values()]
    perturbed = sum(v in (80.0, 120.0) for v in values)
    assert 0.35 < perturbed / len(values) < 0.65


def test_perturb_keeps_constants_and_does_not_mutate_input():
    space = Space({"opt": {"lr": Float(1e-4, 1.0, log=True), "name": "sgd"}, "epochs": 3})
    config = {"opt": {"lr": 0.01, "name": "sgd"}, "epochs": 3}
    out = run(Perturb(), config, space)
    assert config == {"opt": {"lr": 0.01, "name": "sgd"}, "epochs": 3}
    assert out["opt"]["name"] == "sgd" and out["epochs"] == 3
    assert out["opt"]["lr"] in (pytest.approx(0.008), pytest.approx(0.012))


def test_every_dimension_gets_its_own_factor():
    space = Space({f"x{i}": Float(1.0, 1000.0) for i in range(8)})
    out = run(Perturb(), {f"x{i}": 100.0 for i in range(8)}, space)
    assert set(out.values()) == {80.0, 120.0}


@pytest.mark.parametrize("factors", [(), (0.8, 0), (math.nan,), "0.8", (True,), 1.2])
def test_perturb_rejects_bad_factors(factors):
    with pytest.raises(ConfigError, match="'factors' parameter of Perturb"):
        Perturb(factors)


@pytest.mark.parametrize("kwargs", [{"probability": 1.5}, {"probability": -0.1}, {"fallback": "perturb"}])
def test_resample_rejects_bad_parameters(kwargs):
    with pytest.raises(ConfigError, match="parameter of Resample"):
        Resample(**kwargs)


# Custom and compose ----------------------------------------------------------------


def double_lr(config, space, rng):
    config["lr"] = config["lr"] * 2
    return config


def test_custom_explore_gets_a_copy_and_its_result_is_validated():
    space = Space({"lr": Float(0.0, 1.0)})
    config = {"lr": 0.25}
    assert run(CustomExplore(double_lr), config, space) == {"lr": 0.5}
    assert config == {"lr": 0.25}
    with pytest.raises(SpaceError) as info:
        run(CustomExplore(double_lr), {"lr": 0.75}, space)
    message = str(info.value)
    assert "double_lr" in message and "'lr' = 1.5" in message


def test_custom_explore_must_return_a_dict():
    with pytest.raises(SpaceError, match="<lambda>.*not a config dict"):
        run(CustomExplore(lambda c, s, r: None), {"lr": 0.5}, Space({"lr": Float(0.0, 1.0)}))
    with pytest.raises(ConfigError, match="callable"):
        CustomExplore(3)


def set_lr(config, space, rng):
    return {**config, "lr": 0.9}


def test_compose_applies_in_order():
    space = Space({"lr": Float(0.0, 1.0)})
    assert run(Compose(CustomExplore(set_lr), Perturb((0.5,))), {"lr": 0.25}, space) == {"lr": 0.45}
    assert run(Compose(Perturb((0.5,)), CustomExplore(set_lr)), {"lr": 0.25}, space) == {"lr": 0.9}
    with pytest.raises(ConfigError, match="Compose"):
        Compose()
    with pytest.raises(ConfigError, match="Compose"):
        Compose(Perturb(), "resample")


def test_explores_are_seeded():
    space = Space({"x": Float(0.0, 1.0), "n": Int(1, 100), "c": Choice(list("abcdef"))})
    config = {"x": 0.5, "n": 50, "c": "a"}
    explore = Compose(Resample(0.5), Perturb((0.5, 0.9, 1.1, 2.0)))
    assert run(explore, config, space, seed=7) == run(explore, config, space, seed=7)
    assert len({str(run(explore, config, space, seed=s)) for s in range(20)}) > 10
