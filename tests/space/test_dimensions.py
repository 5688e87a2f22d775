import math
import pickle

import numpy as np
import pytest

from poptrain.errors import SpaceError
from poptrain.space import Choice, Float, Int, Ordered, dimension_from_json


def rng(seed=0):
    return np.random.default_rng(seed)


def perturb_many(dim, value, n=200, factors=(0.8, 1.2), seed=0):
    g = rng(seed)
    return {dim.perturb(value, g, factors[int(g.integers(len(factors)))]) for _ in range(n)}


# Ray Tune's explore scenarios -------------------------------------------------


def test_continuous_value_is_scaled_by_each_factor():
    seen = perturb_many(Float(0, 1000), 100.0)
    assert seen == {80.0, 120.0}


def test_ordered_moves_to_a_neighbour():
    dim = Ordered([3, 4, 8, 10])
    assert perturb_many(dim, 4) == {3, 8}
    assert perturb_many(dim, 3) == {3, 4}
    assert perturb_many(dim, 10) == {8, 10}


def test_ordered_value_not_in_list_becomes_any_element():
    assert perturb_many(Ordered([3, 4, 8, 10]), 5) == {3, 4, 8, 10}


def test_ordered_direction_follows_factor():
    dim = Ordered(["s", "m", "l"])
    assert dim.perturb("m", rng(), 0.5) == "s"
    assert dim.perturb("m", rng(), 2.0) == "l"
    assert dim.perturb("m", rng(), 1.0) == "m"


def test_choice_perturb_resamples_uniformly_never_numerically():
    dim = Choice([1, 2, 100])
    seen = [dim.perturb(2, rng(i), 1.2) for i in range(300)]
    assert set(seen) == {1, 2, 100}
    assert dim.perturb("not there", rng(), 0.8) in (1, 2, 100)


# Float --------------------------------------------------------------------------


def test_float_perturb_clips_into_bounds():
    dim = Float(0.5, 1.0)
    assert dim.perturb(0.95, rng(), 1.2) == 1.0
    assert dim.perturb(0.55, rng(), 0.8) == 0.5


def test_float_with_negative_low_steps_by_a_fraction_of_the_range():
    dim = Float(-1.0, 1.0)
    assert dim.perturb(0.0, rng(), 1.2) == pytest.approx(0.4)
    assert dim.perturb(0.0, rng(), 0.8) == pytest.approx(-0.4)
    assert dim.perturb(-0.5, rng(), 1.2) == pytest.approx(-0.1)


def test_float_at_zero_is_not_stuck():
    assert Float(0.0, 10.0).perturb(0.0, rng(), 1.2) == pytest.approx(2.0)


def test_log_float_samples_log_uniformly():
    dim = Float(1e-6, 1.0, log=True)
    xs = np.array([dim.sample(rng(i)) for i in range(2000)])
    assert xs.min() >= 1e-6 and xs.max() <= 1.0
    # log-uniform: about half the mass below the geometric midpoint 1e-3
    assert 0.4 < np.mean(xs < 1e-3) < 0.6


def test_log_float_perturbs_multiplicatively():
    assert Float(1e-5, 1.0, log=True).perturb(1e-3, rng(), 0.8) == pytest.approx(8e-4)


def test_float_returns_python_float_even_for_int_bounds_and_values():
    dim = Float(0, 10)
    assert type(dim.sample(rng())) is float
    assert type(dim.perturb(3, rng(), 1.2)) is float
    assert type(dim.from_unit(0.5)) is float
    assert dim.contains(3) and dim.contains(3.5)


def test_float_contains_rejects_bool_nan_and_strings():
    dim = Float(0.0, 2.0)
    assert not dim.contains(True)
    assert not dim.contains(math.nan)
    assert not dim.contains("1.0")
    assert not dim.contains(2.5)


def test_float_unit_round_trip_in_log_space():
    dim = Float(1e-4, 1.0, log=True)
    assert dim.to_unit(1e-2) == pytest.approx(0.5)
    assert dim.from_unit(0.5) == pytest.approx(1e-2)
    assert dim.from_unit(-3) == 1e-4 and dim.from_unit(7) == 1.0


def test_float_perturb_of_non_number_resamples():
    dim = Float(1.0, 2.0)
    assert dim.contains(dim.perturb(None, rng(), 1.2))
    assert dim.contains(dim.perturb(math.nan, rng(), 1.2))


def test_float_survives_a_span_wider_than_the_largest_float():
    dim = Float(-1e308, 1e308)
    for i in range(50):
        assert dim.contains(dim.sample(rng(i)))
    assert dim.contains(dim.perturb(0.0, rng(), 1.2))
    assert dim.to_unit(0.0) == pytest.approx(0.5)


# Int ----------------------------------------------------------------------------


def test_int_never_gets_stuck():
    dim = Int(1, 10)
    assert dim.perturb(2, rng(), 1.2) == 3
    assert dim.perturb(2, rng(), 0.8) == 1
    assert dim.perturb(1, rng(), 0.8) == 1  # clipped at the end
    assert dim.perturb(10, rng(), 1.2) == 10
    assert dim.perturb(5, rng(), 1.0) == 5


def test_int_scales_then_rounds():
    assert Int(1, 1000).perturb(100, rng(), 1.2) == 120
    assert Int(-100, 100).perturb(0, rng(), 1.2) == 40


def test_int_returns_python_int():
    dim = Int(0, 5)
    assert type(dim.sample(rng())) is int
    assert type(dim.perturb(np.int64(3), rng(), 1.2)) is int
    assert type(dim.from_unit(0.3)) is int
    assert dim.contains(np.int64(3))
    assert not dim.contains(3.0)
    assert not dim.contains(True)


def test_int_sample_covers_inclusive_bounds():
    dim = Int(2, 4)
    assert {dim.sample(rng(i)) for i in range(100)} == {2, 3, 4}


def test_log_int_sample_covers_both_ends():
    dim = Int(1, 4, log=True)
    assert {dim.sample(rng(i)) for i in range(300)} == {1, 2, 3, 4}


def test_int_accepts_integral_float_bounds():
    assert Int(1.0, 8.0) == Int(1, 8)


# Categorical ---------------------------------------------------------------------


def test_categorical_unit_positions():
    dim = Ordered([3, 4, 8, 10])
    assert [dim.to_unit(v) for v in dim.values] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert [dim.from_unit(u) for u in (0.0, 0.3, 0.7, 1.0)] == [3, 4, 8, 10]
    assert Choice(["only"]).to_unit("only") == 0.5
    with pytest.raises(SpaceError, match="'x' is not one of"):
        dim.to_unit("x")


def test_choice_contains_is_type_strict():
    dim = Choice([1, "a", None, False])
    assert dim.contains(1) and dim.contains(None) and dim.contains(False)
    assert not dim.contains(True)
    assert not dim.contains(1.0)
    assert not dim.contains([1])
    assert not dim.contains(0)


def test_choice_normalises_numpy_values():
    dim = Choice(np.array([1, 2, 3]))
    assert dim.values == (1, 2, 3) and all(type(v) is int for v in dim.values)


# Validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: Float(1.0, 1.0), "low=1.0"),
        (lambda: Float(2.0, 1.0), "low=2.0"),
        (lambda: Float(0.0, 1.0, log=True), "low=0.0"),
        (lambda: Float(-1.0, 1.0, log=True), "low=-1.0"),
        (lambda: Float(0.0, math.inf), "inf"),
        (lambda: Float(math.nan, 1.0), "nan"),
        (lambda: Float("0", 1.0), "'0'"),
        (lambda: Float(True, 2.0), "True"),
        (lambda: Int(0, 1.5), "1.5"),
        (lambda: Int(3, 3), "low=3"),
        (lambda: Int(0, 10, log=True), "low=0"),
        (lambda: Int(0, 2**60), str(2**60)),
        (lambda: Choice([]), "Choice([])"),
        (lambda: Choice(["a", "a"]), "'a'"),
        (lambda: Choice([1, 1.0]), "1.0"),
        (lambda: Ordered([1, [2]]), "[2]"),
        (lambda: Choice([object]), "object"),
        (lambda: Choice([math.nan]), "nan"),
        (lambda: Choice("abc"), "'abc'"),
        (lambda: Float(0.0, 1.0, log="yes"), "'yes'"),
    ],
)
def test_invalid_dimensions_raise_naming_dimension_and_value(make, needle):
    with pytest.raises(SpaceError) as info:
        make()
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def test_perturb_rejects_bad_factors():
    for factor in (0, -1.2, math.nan, math.inf):
        with pytest.raises(SpaceError, match="factor"):
            Float(0.0, 1.0).perturb(0.5, rng(), factor)


def test_from_unit_rejects_nan():
    with pytest.raises(SpaceError, match="nan"):
        Int(0, 3).from_unit(math.nan)


# JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dim",
    [Float(0.0, 1.0), Float(1e-5, 1.0, log=True), Int(-3, 7), Int(1, 1024, log=True),
     Choice(["a", 1, 2.5, True, None]), Ordered([32, 64, 128])],
)
def test_json_and_pickle_round_trip(dim):
    import json

    back = dimension_from_json(json.loads(json.dumps(dim.to_json())))
    assert back == dim and type(back) is type(dim) and hash(back) == hash(dim)
    assert pickle.loads(pickle.dumps(dim)) == dim


def test_dimensions_of_different_kinds_are_not_equal():
    assert Choice([1, 2]) != Ordered([1, 2])
    assert Float(1.0, 2.0) != Int(1, 2)


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"type": "gaussian", "mu": 0}, "'gaussian'"),
        ({"low": 0, "high": 1}, "None"),
        ({"type": "float", "low": 0}, "'high'"),
        ({"type": "float", "low": 0, "high": 1, "step": 2}, "'step'"),
        ({"type": "int", "low": 0.5, "high": 1}, "0.5"),
        ("float", "'float'"),
    ],
)
def test_bad_dimension_json_raises(data, needle):
    with pytest.raises(SpaceError) as info:
        dimension_from_json(data)
    assert needle in str(info.value)
