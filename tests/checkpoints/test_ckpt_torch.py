"""Round trips of torch states: every dtype, views, Parameters, torch.Size, a real Adam and a Module state_dict."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from poptrain.checkpoints import dumps, loads

torch = pytest.importorskip("torch")


TORCH_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16,
                torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128, torch.float8_e4m3fn,
                torch.uint16, torch.uint32, torch.uint64]


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(2, 3), (), (0, 4)], ids=str)
def test_torch_tensors_every_dtype(roundtrip: Any, dtype: Any, shape: tuple) -> None:
    n = int(np.prod(shape))
    t = (torch.arange(n, dtype=torch.float64) * 1.37 - 2).to(dtype).reshape(shape)
    roundtrip({"t": t})


def test_bfloat16_values_are_bit_exact(roundtrip: Any) -> None:
    t = torch.randn(64, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    t[0], t[1], t[2] = math.nan, math.inf, -0.0
    back = roundtrip(t)
    assert back.dtype == torch.bfloat16


def test_torch_views_grad_parameters_and_size(roundtrip: Any) -> None:
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


def test_adam_state_dict_after_a_step_round_trips_and_resumes_identically(roundtrip: Any) -> None:
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


def test_module_state_dict_keeps_ordered_dict_and_metadata(roundtrip: Any) -> None:
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
