import json
import pickle

import numpy as np
import pytest

from poptrain.errors import SpaceError
from poptrain.space import Choice, Float, Int, Ordered, Space


def make_space():
    return Space(
        {
            "optimizer": {"lr": Float(1e-5, 1e-1, log=True), "momentum": Float(0.0, 0.99), "name": "sgd"},
            "batch_size": Ordered([32, 64, 128]),
            "layers": Int(1, 8),
            "activation": Choice(["relu", "gelu"]),
            "epochs": 10,
            "tags": ["a", "b"],
        }
    )


def test_paths_are_sorted_key_paths():
    assert make_space().paths == [
        ("activation",),
        ("batch_size",),
        ("layers",),
        ("optimizer", "lr"),
        ("optimizer", "momentum"),
    ]


def test_sample_keeps_constants_and_fills_dimensions():
    space = make_space()
    config = space.sample(np.random.default_rng(0))
    assert config["epochs"] == 10 and config["tags"] == ["a", "b"]
    assert config["optimizer"]["name"] == "sgd"
    space.validate(config)
    assert type(config["layers"]) is int
    assert config == space.sample(np.random.default_rng(0))


def test_sampled_constants_are_copies():
    space = make_space()
    config = space.sample(np.random.default_rng(0))
    config["tags"].append("c")
    assert space.sample(np.random.default_rng(0))["tags"] == ["a", "b"]


def test_get_and_with_value_do_not_mutate():
    space = make_space()
    config = space.sample(np.random.default_rng(1))
    new = space.with_value(config, ("optimizer", "lr"), 0.05)
    assert space.get(new, ("optimizer", "lr")) == 0.05
    assert space.get(config, ("optimizer", "lr")) != 0.05
    assert space.get(new, "layers") == config["layers"]
    assert space.with_value({}, ("a", "b"), 1) == {"a": {"b": 1}}


def test_dimension_lookup():
    space = make_space()
    assert space.dimension(("optimizer", "lr")) == Float(1e-5, 1e-1, log=True)
    assert space.dimension("layers") == Int(1, 8)
    with pytest.raises(SpaceError, match="optimizer.name"):
        space.dimension(("optimizer", "name"))


@pytest.mark.parametrize(
    "path, value, needle",
    [
        (("optimizer", "lr"), 0.5, "'optimizer.lr' = 0.5"),
        (("layers",), 3.0, "'layers' = 3.0 (float)"),
        (("layers",), True, "'layers' = True"),
        (("batch_size",), 48, "'batch_size' = 48"),
        (("activation",), "tanh", "'activation' = 'tanh'"),
    ],
)
def test_validate_names_path_and_value(path, value, needle):
    space = make_space()
    config = space.with_value(space.sample(np.random.default_rng(0)), path, value)
    with pytest.raises(SpaceError) as info:
        space.validate(config)
    assert needle in str(info.value)


def test_validate_reports_missing_values():
    space = make_space()
    config = space.sample(np.random.default_rng(0))
    del config["optimizer"]["momentum"]
    with pytest.raises(SpaceError, match="optimizer.momentum"):
        space.validate(config)
    with pytest.raises(SpaceError, match="dict"):
        space.validate([1, 2])


def test_unit_round_trip():
    space = make_space()
    config = space.sample(np.random.default_rng(2))
    vector = space.to_unit(config)
    assert vector.shape == (5,) and np.all((vector >= 0) & (vector <= 1))
    back = space.from_unit(vector, config)
    for path in space.paths:
        assert space.get(back, path) == pytest.approx(space.get(config, path))
    assert back["epochs"] == 10


def test_from_unit_checks_length_and_clips():
    space = make_space()
    base = space.sample(np.random.default_rng(0))
    with pytest.raises(SpaceError, match="5 unit positions"):
        space.from_unit([0.5], base)
    extreme = space.from_unit([2.0, -1.0, 1.5, -0.1, 9.0], base)
    space.validate(extreme)
    assert extreme["layers"] == 8 and extreme["batch_size"] == 32


def test_to_unit_names_the_path():
    space = make_space()
    config = space.with_value(space.sample(np.random.default_rng(0)), "activation", "tanh")
    with pytest.raises(SpaceError, match="'activation'"):
        space.to_unit(config)


def test_json_round_trip_and_equality():
    space = make_space()
    data = json.loads(json.dumps(space.to_json()))
    back = Space.from_json(data)
    assert back == space and hash(back) == hash(space)
    assert back.paths == space.paths
    assert back.sample(np.random.default_rng(3)) == space.sample(np.random.default_rng(3))
    assert pickle.loads(pickle.dumps(space)) == space


def test_constant_dict_that_looks_like_a_dimension_stays_a_constant():
    space = Space({"meta": {"type": "float", "low": 0, "high": 1}, "x": Float(0.0, 1.0)})
    back = Space.from_json(json.loads(json.dumps(space.to_json())))
    assert back.paths == [("x",)]
    assert back.sample(np.random.default_rng(0))["meta"] == {"type": "float", "low": 0, "high": 1}


def test_equality_ignores_key_order():
    a = Space({"x": Float(0.0, 1.0), "y": 3})
    b = Space({"y": 3, "x": Float(0.0, 1.0)})
    assert a == b
    assert a != Space({"x": Float(0.0, 1.0), "y": 4})


def test_diff_lists_each_difference():
    a = Space({"lr": Float(1e-4, 1e-1, log=True), "opt": {"m": Float(0.0, 1.0)}, "epochs": 10, "bs": Int(1, 4)})
    b = Space({"lr": Float(1e-5, 1e-1, log=True), "opt": {"wd": Float(0.0, 1.0)}, "epochs": 10, "bs": 4})
    assert a.diff(a) == []
    assert a.diff(b) == [
        "bs: Int(1, 4) != constant 4",
        "lr: Float(0.0001, 0.1, log=True) != Float(1e-05, 0.1, log=True)",
        "opt.m: only in this space (Float(0.0, 1.0))",
        "opt.wd: only in the other space (Float(0.0, 1.0))",
    ]


@pytest.mark.parametrize(
    "spec, needle",
    [
        ({"x": {"y": object()}}, "x.y"),
        ({"x": [Float(0.0, 1.0)]}, "x"),
        ({1: Float(0.0, 1.0)}, "1"),
        ({"x": float("nan")}, "x"),
        ({"$dimension": 1}, "$dimension"),
        ([("x", 1)], "expected a dict"),
    ],
)
def test_invalid_spec_raises_naming_the_path(spec, needle):
    with pytest.raises(SpaceError) as info:
        Space(spec)
    assert needle in str(info.value)


def test_invalid_json_names_the_path():
    data = {"format": 1, "spec": {"opt": {"lr": {"$dimension": {"type": "float", "low": 1.0, "high": 0.5}}}}}
    with pytest.raises(SpaceError) as info:
        Space.from_json(data)
    assert "opt.lr" in str(info.value) and "low=1.0" in str(info.value)
    with pytest.raises(SpaceError, match="unknown dimension type 'beta'"):
        Space.from_json({"spec": {"a": {"$dimension": {"type": "beta"}}}})
    with pytest.raises(SpaceError, match="format"):
        Space.from_json({"format": 99, "spec": {}})
