"""Torch tensors as raw bytes, so that a checkpoint never needs ``torch.load``.

A tensor is stored as its dtype name, its shape and its little-endian bytes.
That is enough to rebuild it exactly for every dtype torch can view as bytes
(bfloat16, float8, complex32, unsigned ints ...), and reading it back runs no
unpickler at all, not even ``torch.load(weights_only=True)``.

torch is imported only by the functions here that receive or build a tensor.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from poptrain._optional import require
from poptrain.errors import CheckpointError, UnsafeStateError


def loaded_torch() -> Any | None:
    """Return the torch module if the process has imported it, else None.

    A value can only be a tensor if torch is already imported, so the encoder
    asks here instead of importing torch for every state.
    """
    return sys.modules.get("torch")


def tensor_to_record(x: Any, path: str, torch: Any) -> tuple[dict[str, Any], np.ndarray]:
    """Split a tensor into a JSON description and a uint8 array of its bytes.

    Args:
        x: a ``torch.Tensor`` or ``torch.nn.Parameter`` on any device.
        path: its key path, for error messages.
        torch: the torch module.

    Returns:
        ``(record, raw)``: ``record`` holds dtype, shape, requires_grad and
        whether it was a Parameter; ``raw`` its bytes in C order, on the CPU.

    Example:
        >>> import torch
        >>> rec, raw = tensor_to_record(torch.ones(2, dtype=torch.bfloat16), "state", torch)
        >>> rec["dtype"], raw.nbytes
        ('bfloat16', 4)
    """
    if x.layout != torch.strided or x.is_quantized or x.is_nested:
        raise UnsafeStateError(
            f"{path} is a {x.layout} {'quantized ' if x.is_quantized else ''}tensor; only dense tensors "
            "can be saved (convert it with .to_dense() / .dequantize() first)"
        )
    if x.device.type == "meta":
        raise UnsafeStateError(f"{path} is a tensor on the meta device, which holds no data to save")
    t = x.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
    # A 0-d tensor cannot be viewed as bytes directly; its 1-element reshape can.
    flat = t.reshape(-1)
    raw = flat.view(torch.uint8).numpy() if flat.numel() else np.zeros(0, dtype=np.uint8)
    record = {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "requires_grad": bool(x.requires_grad),
        "parameter": isinstance(x, torch.nn.Parameter),
    }
    return record, raw


def tensor_from_record(record: dict[str, Any], raw: np.ndarray, path: str) -> Any:
    """Rebuild the CPU tensor that :func:`tensor_to_record` described.

    Raises:
        CheckpointError: the record is malformed or does not match the bytes.
    """
    torch = require("torch", feature="loading a checkpoint that holds torch tensors")
    try:
        name, shape = record["dtype"], record["shape"]
        dtype = getattr(torch, name) if isinstance(name, str) else None
        if not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"{path}: unknown tensor dtype {name!r}")
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise CheckpointError(f"{path}: malformed tensor shape {shape!r}")
        numel = int(np.prod(shape, dtype=np.int64))
        itemsize = torch.empty((), dtype=dtype).element_size()
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size != numel * itemsize:
            raise CheckpointError(f"{path}: tensor data has {raw.size} bytes, expected {numel * itemsize}")
        flat = torch.from_numpy(raw).view(dtype) if numel else torch.empty(0, dtype=dtype)
        t = flat.reshape(shape)
        if record.get("parameter"):
            return torch.nn.Parameter(t, requires_grad=bool(record.get("requires_grad")))
        if record.get("requires_grad"):
            t.requires_grad_(True)
        return t
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: malformed tensor record ({exc})") from exc
