import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poptrain.algorithms import (
    PBT,
    Compose,
    CustomExplore,
    Explore,
    Latest,
    MeanLast,
    Perturb,
    Resample,
    Tournament,
    Truncation,
    TTest,
    explore_from_json,
    register_explore,
    scorer_from_json,
    selection_from_json,
    strategy_from_json,
)
from poptrain.errors import ConfigError


def keep(config, space, rng):
    return config


class Holder:
    @staticmethod
    def keep(config, space, rng):
        return config


def through_json(obj):
    return json.loads(json.dumps(obj.to_json(), allow_nan=False))


scorers = st.one_of(st.just(Latest()), st.builds(MeanLast, st.integers(1, 50)))
fractions = st.floats(min_value=0.01, max_value=0.5)
selections = st.one_of(
    st.builds(Truncation, fractions),
    st.just(Tournament()),
    st.builds(TTest, st.integers(2, 30), st.floats(min_value=1e-4, max_value=0.5), fractions),
)
factor_lists = st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=4)
simple_explores = st.one_of(
    st.builds(Perturb, factor_lists),
    st.just(CustomExplore(keep)),
    st.just(CustomExplore(Holder.keep)),
)
explores = st.recursive(
    simple_explores,
    lambda inner: st.one_of(
        st.builds(Resample, st.floats(0, 1), st.one_of(st.none(), inner)),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: Compose(*xs)),
    ),
    max_leaves=5,
)
strategies = st.builds(
    PBT,
    interval=st.integers(1, 1000),
    burn_in=st.integers(0, 1000),
    selection=selections,
    explore=explores,
    scorer=scorers,
    synchronous=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(pbt=strategies)
def test_strategy_json_round_trip(pbt):
    data = through_json(pbt)
    assert PBT.from_json(data) == pbt
    assert strategy_from_json(data) == pbt
    assert through_json(PBT.from_json(data)) == data


@settings(deadline=None)
@given(part=st.one_of(scorers, selections, explores))
def test_component_json_round_trip(part):
    read = {"scorer": scorer_from_json, "selection": selection_from_json, "explore": explore_from_json}[part.family]
    assert read(through_json(part)) == part


def test_json_shape_is_readable():
    assert PBT().to_json() == {
        "kind": "pbt",
        "interval": 5,
        "burn_in": 0,
        "synchronous": False,
        "selection": {"kind": "truncation", "fraction": 0.25},
        "explore": {"kind": "resample", "probability": 0.25, "fallback": {"kind": "perturb", "factors": [0.8, 1.2]}},
        "scorer": {"kind": "latest"},
    }
    assert CustomExplore(keep).to_json() == {"kind": "custom", "function": f"{keep.__module__}:keep"}


def test_missing_parts_take_defaults():
    assert PBT.from_json({"kind": "pbt", "interval": 7}) == PBT(interval=7)


def test_lambdas_and_nested_functions_are_rejected_when_stored():
    with pytest.raises(ConfigError, match="lambda"):
        PBT(explore=CustomExplore(lambda c, s, r: c)).to_json()

    def local(config, space, rng):
        return config

    with pytest.raises(ConfigError, match="top level"):
        CustomExplore(local).to_json()


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"kind": "pbt", "explore": {"kind": "custom", "function": "no_such_module_xyz:fn"}}, "no_such_module_xyz"),
        ({"kind": "pbt", "explore": {"kind": "custom", "function": "json:no_such_fn"}}, "json:no_such_fn"),
        ({"kind": "pbt", "explore": {"kind": "custom", "function": "json"}}, "module:qualname"),
        ({"kind": "pbt", "selection": {"kind": "roulette"}}, "'roulette'"),
        ({"kind": "pbt", "selection": {"kind": "truncation", "quantile": 0.2}}, "quantile"),
        ({"kind": "pbt", "selection": {"kind": "truncation", "fraction": 2}}, "'fraction'"),
        ({"kind": "pbt", "scorer": "latest"}, "'latest'"),
        ({"kind": "pbt", "interval": 0}, "'interval'"),
        ({"kind": "pbt", "speed": 3}, "speed"),
        ({"kind": "pb3"}, "'pb3'"),
        ({"kind": "pbt", "explore": {"kind": "compose", "explores": "perturb"}}, "explores"),
    ],
)
def test_bad_json_raises_config_error(data, needle):
    with pytest.raises(ConfigError) as info:
        PBT.from_json(data) if data.get("kind") == "pbt" else strategy_from_json(data)
    assert needle in str(info.value)


def test_a_lazily_known_kind_whose_module_is_missing_is_a_config_error():
    from poptrain.algorithms.serialize import Registry

    registry = Registry("explore", lazy={"gone": "poptrain.algorithms.no_such_module"})
    with pytest.raises(ConfigError, match="explore kind 'gone' needs poptrain.algorithms.no_such_module"):
        registry.from_json({"kind": "gone"})


def test_pb2_in_json_without_its_extra_names_the_pip_command():
    import subprocess
    import sys

    # A fresh interpreter in which scikit-learn cannot be imported.
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from poptrain.algorithms.serialize import explore_from_json\n"
        "try:\n    explore_from_json({'kind': 'pb2'})\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "pip install 'poptrain[pb2]'" in out.stdout, out.stdout + out.stderr


@dataclass(frozen=True)
class Jitter(Explore):
    scale: float = 0.1
    kind: ClassVar[str] = "test_jitter"

    def __call__(self, config, *, space, rng, population, member_id):
        return dict(config)


def test_new_explores_register_and_round_trip():
    register_explore("test_jitter", Jitter)
    register_explore("test_jitter", Jitter)  # idempotent
    pbt = PBT(explore=Compose(Jitter(0.3), Perturb()))
    assert PBT.from_json(through_json(pbt)) == pbt


def test_registration_is_checked():
    with pytest.raises(ConfigError, match="already registered"):
        register_explore("perturb", Jitter)
    with pytest.raises(ConfigError, match="kind"):
        register_explore("another_name", Jitter)
    with pytest.raises(ConfigError, match="explore"):
        register_explore("truncation2", Truncation)
