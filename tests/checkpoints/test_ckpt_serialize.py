"""Round trips through dumps/loads keep types, dtypes, shapes, values, key types and order."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poptrain.checkpoints import dumps, loads

torch = pytest.importorskip("torch")


def assert_same(a: Any, b: Any, path: str = "state") -> None:
    """Deep equality that also demands identical types, key types and key order."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b] or _nan_keys_equal(a, b), path
        for (ka, va), vb in zip(a.items(), b.values()):
            assert_same(va, vb, f"{path}[{ka!r}]")
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None), f"{path}._metadata"
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), path
        assert math.copysign(1, a) == math.copysign(1, b), path
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), path
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert b.device.type == "cpu" and a.requires_grad == b.requires_grad, path
        assert _tensor_bytes(a) == _tensor_bytes(b), path
    else:
        assert a == b, path


def _nan_keys_equal(a: dict, b: dict) -> bool:
    return all(type(x) is type(y) and (x == y or x != x and y != y) for x, y in zip(a, b))


def _tensor_bytes(t: Any) -> bytes:
    flat = t.detach().cpu().resolve_conj().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def roundtrip(state: Any) -> Any:
    back = loads(dumps(state))
    assert_same(state, back)
    return back


def test_python_values_and_containers() -> None:
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


def test_dict_key_types_and_order_kept() -> None:
    state = {"b": 1, 3: 2, 1.5: 3, True: 4, None: 5, "a": 6, -7: 7, math.inf: 8}
    back = roundtrip(state)
    assert list(back) == ["b", 3, 1.5, True, None, "a", -7, math.inf]
    assert type(list(back)[3]) is bool


def test_tuples_stay_tuples_and_lists_stay_lists() -> None:
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
def test_numpy_arrays(arr: np.ndarray) -> None:
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
def test_numpy_scalars(scalar: np.generic) -> None:
    back = roundtrip([scalar])[0]
    assert type(back) is type(scalar)


TORCH_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16,
                torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128, torch.float8_e4m3fn,
                torch.uint16, torch.uint32, torch.uint64]


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(2, 3), (), (0, 4)], ids=str)
def test_torch_tensors_every_dtype(dtype: Any, shape: tuple) -> None:
    n = int(np.prod(shape))
    t = (torch.arange(n, dtype=torch.float64) * 1.37 - 2).to(dtype).reshape(shape)
    roundtrip({"t": t})


def test_bfloat16_values_are_bit_exact() -> None:
    t = torch.randn(64, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    t[0], t[1], t[2] = math.nan, math.inf, -0.0
    back = roundtrip(t)
    assert back.dtype == torch.bfloat16


def test_torch_views_grad_parameters_and_size() -> None:
    base = torch.arange(12.0).reshape(3, 4)
    leaf = torch.ones(2, requires_grad=True)
    state = {
        "transposed": base.t(),
        "sliced": base[:, 1::2],
        "conj": torch.tensor([1 + 2j]).conj(),
        "grad": leaf * 2,
        "param": torch.nn.Parameter(torch.zeros(3)),
        "frozen": torch.nn.Parameter(torch.zeros(1), requires_grad=False),
        "size": torch.Size([2, 3]),
        "sizes": (torch.Size([]), [torch.Size([1])]),
    }
    back = roundtrip(state)
    assert isinstance(back["param"], torch.nn.Parameter) and back["param"].requires_grad
    assert not back["frozen"].requires_grad
    assert back["sliced"].tolist() == base[:, 1::2].tolist()
    # The saved slice holds only its own elements, not the whole base storage.
    assert len(dumps(base[:1, :1])) < len(dumps(base))


def test_loaded_tensor_is_writable_and_owns_its_memory() -> None:
    back = loads(dumps({"t": torch.zeros(4)}))["t"]
    back += 1
    assert back.tolist() == [1.0] * 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensor_saved_from_cpu_and_loaded_on_cpu() -> None:
    t = torch.arange(4.0, device="cuda")
    back = loads(dumps(t))
    assert back.device.type == "cpu" and back.tolist() == t.tolist()


def _trained_adam() -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.95), amsgrad=True)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
    return model, opt


def test_adam_state_dict_after_a_step_round_trips_and_resumes_identically() -> None:
    model, opt = _trained_adam()
    sd = opt.state_dict()
    assert all(type(k) is int for k in sd["state"])  # the int keys we must keep
    back = roundtrip(sd)

    twin_model, _ = _trained_adam()
    twin_model.load_state_dict(loads(dumps(model.state_dict())))
    twin_opt = torch.optim.Adam(twin_model.parameters(), lr=0.5)
    twin_opt.load_state_dict(back)
    assert twin_opt.param_groups[0]["lr"] == 1e-2 and twin_opt.param_groups[0]["betas"] == (0.8, 0.95)
    x = torch.randn(8, 4)
    for m, o in ((model, opt), (twin_model, twin_opt)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for p, q in zip(model.parameters(), twin_model.parameters()):
        assert torch.equal(p, q)


def test_module_state_dict_keeps_ordered_dict_and_metadata() -> None:
    model, _ = _trained_adam()
    sd = model.state_dict()
    back = roundtrip(sd)
    assert type(back) is OrderedDict and back._metadata == sd._metadata
    model.load_state_dict(back, strict=True)


def test_identical_states_give_identical_bytes() -> None:
    def make() -> Any:
        return {"w": np.arange(5.0), "t": torch.ones(3, dtype=torch.bfloat16), "k": {1: (2, "x")}}

    assert dumps(make()) == dumps(make())
    assert dumps({"a": 1, "b": 2}) != dumps({"b": 2, "a": 1})  # order is part of the state


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


@settings(max_examples=150, deadline=None)
@given(_trees)
def test_any_plain_tree_round_trips_exactly(state: Any) -> None:
    roundtrip(state)
    assert dumps(state) == dumps(loads(dumps(state)))
