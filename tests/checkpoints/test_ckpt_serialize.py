"""Round trips of plain Python and numpy states (no torch needed) keep types, dtypes, values, key types and order."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poptrain.checkpoints import dumps, loads


def test_python_values_and_containers(roundtrip: Any) -> None:
    roundtrip(
        {
            "none": None,
            "bools": [True, False],
            "ints": [0, -1, 2**62, 2**63, -(2**63), 2**200, -(3**150)],
            "floats": [0.1, -0.0, 1e308, 5e-324, math.nan, math.inf, -math.inf],
            "text": ["", "héllo ✓", "\ud800", "line\nbreak"],
            "bytes": [b"", b"\x00\xff"],
            "nested": ((1, (2, (3, ()))), [[], {}], ()),
            "empty": {},
        }
    )


def test_nan_sign_and_payload_survive() -> None:
    neg_nan = -math.nan
    back = loads(dumps(neg_nan))
    assert math.isnan(back) and math.copysign(1, back) == -1


def test_dict_key_types_and_order_kept(roundtrip: Any) -> None:
    state = {"b": 1, 3: 2, 1.5: 3, True: 4, None: 5, "a": 6, -7: 7, math.inf: 8}
    back = roundtrip(state)
    assert list(back) == ["b", 3, 1.5, True, None, "a", -7, math.inf]
    assert type(list(back)[3]) is bool


def test_tuples_stay_tuples_and_lists_stay_lists(roundtrip: Any) -> None:
    back = roundtrip({"betas": (0.9, 0.999), "l": [1, (2,)], "t": ([1],)})
    assert isinstance(back["betas"], tuple) and isinstance(back["t"][0], list)


NUMPY_ARRAYS = [
    np.arange(12, dtype=np.int64).reshape(3, 4),
    np.array([True, False]),
    *[np.arange(5).astype(t) for t in ("i1", "u1", "i2", "u2", "i4", "u4", "u8", "f2", "f4", "c8", "c16")],
    np.array([1.0, np.nan, np.inf, -np.inf, -0.0]),
    np.array(3.5),  # 0-d
    np.zeros((0, 3), dtype=np.float32),
    np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.arange(20.0)[::3],  # not contiguous
    np.arange(4, dtype=">f8"),  # big-endian
    np.array(["ab", "çd"]),
    np.array([b"x", b"yz"]),
    np.array(["2024-01-01", "NaT"], dtype="datetime64[s]"),
    np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
]


@pytest.mark.parametrize("arr", NUMPY_ARRAYS, ids=lambda a: f"{a.dtype.str}-{a.shape}")
def test_numpy_arrays(roundtrip: Any, arr: np.ndarray) -> None:
    back = roundtrip({"x": arr})["x"]
    assert back.flags.writeable
    if arr.flags.f_contiguous and not arr.flags.c_contiguous:
        assert back.flags.f_contiguous


@pytest.mark.parametrize(
    "scalar",
    [np.float32(1.5), np.float64(-0.0), np.int8(-3), np.uint64(2**64 - 1), np.bool_(True), np.complex64(1 + 2j),
     np.str_("s"), np.bytes_(b"b"), np.datetime64("2020-02-02"), np.float16(np.nan)],
    ids=lambda s: type(s).__name__,
)
def test_numpy_scalars(roundtrip: Any, scalar: np.generic) -> None:
    back = roundtrip([scalar])[0]
    assert type(back) is type(scalar)


NUMPY_ONLY_SCRIPT = """
import hashlib, sys
import numpy as np
from poptrain.checkpoints import dumps, loads
state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": 7, "cfg": {"lr": 0.1, 1: (None, True)}}
data = dumps(state)
assert loads(data)["cfg"][1] == (None, True)
assert "torch" not in sys.modules, "torch was imported for a numpy-only state"
print(hashlib.sha256(data).hexdigest())
"""


def test_numpy_only_state_needs_no_torch_and_hashes_the_same_in_another_process() -> None:
    out = subprocess.run([sys.executable, "-c", NUMPY_ONLY_SCRIPT], capture_output=True, text=True, check=True)
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": 7, "cfg": {"lr": 0.1, 1: (None, True)}}
    assert out.stdout.strip() == hashlib.sha256(dumps(state)).hexdigest()


_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary(max_size=8)
)
_keys = st.text(max_size=5) | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
_trees = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_trees)
def test_any_plain_tree_round_trips_exactly(roundtrip: Any, state: Any) -> None:
    roundtrip(state)
    assert dumps(state) == dumps(loads(dumps(state)))
