"""Whatever valid dimension and whatever input, values stay in the domain with their type."""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from poptrain.space import Choice, Float, Int, Ordered, Space, dimension_from_json

finite = st.floats(allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=5e-324, allow_infinity=False)
ints = st.integers(min_value=-(2**53), max_value=2**53)
scalars = st.one_of(st.text(max_size=5), st.integers(-1000, 1000), finite, st.booleans(), st.none())


def _ordered_pair(draw, elements):
    a, b = draw(elements), draw(elements)
    if a == b:
        b = draw(elements.filter(lambda x: x != a))
    return (a, b) if a < b else (b, a)


@st.composite
def floats_dims(draw):
    if draw(st.booleans()):
        return Float(*_ordered_pair(draw, positive), log=True)
    return Float(*_ordered_pair(draw, finite))


@st.composite
def int_dims(draw):
    if draw(st.booleans()):
        return Int(*_ordered_pair(draw, st.integers(1, 2**53)), log=True)
    return Int(*_ordered_pair(draw, ints))


def _distinct(values):
    seen, out = set(), []
    for v in values:
        key = ("bool", v) if isinstance(v, bool) else ("num", float(v)) if isinstance(v, (int, float)) else (type(v), v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


categorical_dims = st.builds(
    lambda cls, values: cls(_distinct(values)),
    st.sampled_from([Choice, Ordered]),
    st.lists(scalars, min_size=1, max_size=6),
)
dimensions = st.one_of(floats_dims(), int_dims(), categorical_dims)
anything = st.one_of(scalars, st.floats(), st.integers(), st.lists(st.integers(), max_size=2))
factors = st.floats(min_value=1e-3, max_value=1e3)
seeds = st.integers(0, 2**32 - 1)
units = st.floats(allow_nan=False)


def assert_in_domain(dim, value):
    assert dim.contains(value), (dim, value)
    if isinstance(dim, Float):
        assert type(value) is float
    if isinstance(dim, Int):
        assert type(value) is int


@settings(max_examples=300, deadline=None)
@given(dim=dimensions, seed=seeds, factor=factors, start=anything, u=units)
def test_values_always_in_domain_with_declared_type(dim, seed, factor, start, u):
    rng = np.random.default_rng(seed)
    sampled = dim.sample(rng)
    assert_in_domain(dim, sampled)
    assert_in_domain(dim, dim.perturb(sampled, rng, factor))
    assert_in_domain(dim, dim.perturb(start, rng, factor))
    assert_in_domain(dim, dim.from_unit(u))
    position = dim.to_unit(sampled)
    assert 0.0 <= position <= 1.0


@settings(deadline=None)
@given(dim=dimensions)
def test_dimension_json_round_trip(dim):
    back = dimension_from_json(json.loads(json.dumps(dim.to_json(), allow_nan=False)))
    assert back == dim


@settings(deadline=None)
@given(dim=st.one_of(int_dims(), categorical_dims), seed=seeds)
def test_discrete_unit_round_trip_is_exact(dim, seed):
    value = dim.sample(np.random.default_rng(seed))
    if isinstance(dim, Int) and dim.high - dim.low > 2**20:
        return  # unit positions cannot tell neighbours apart in a huge range
    back = dim.from_unit(dim.to_unit(value))
    assert back == value and type(back) is type(value)


keys = st.text(min_size=1, max_size=4).filter(lambda k: k != "$dimension")
json_constants = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=6
)
specs = st.recursive(
    st.dictionaries(keys, st.one_of(dimensions, json_constants), max_size=4),
    lambda inner: st.dictionaries(keys, st.one_of(inner, dimensions, json_constants), max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(spec=specs, seed=seeds)
def test_space_json_round_trip_and_samples_validate(spec, seed):
    space = Space(spec)
    back = Space.from_json(json.loads(json.dumps(space.to_json(), allow_nan=False)))
    assert back == space and back.diff(space) == []
    config = space.sample(np.random.default_rng(seed))
    space.validate(config)
    back.validate(config)
    vector = space.to_unit(config)
    assert np.all((vector >= 0) & (vector <= 1)) and not np.any(np.isnan(vector))
    space.validate(space.from_unit(vector, config))
