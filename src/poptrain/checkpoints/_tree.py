"""The structure of a state as JSON, with arrays and tensors set aside by reference.

Plain JSON holds ``None``, ``bool``, ``str``, small ``int``, finite ``float``
and ``list``. Everything else is a JSON object tagged ``{"t": ...}``; since a
dict is always tagged too, an untagged JSON object never occurs and a reader
can tell every node apart without guessing. Dict items are ``[key, value]``
pairs, which keeps key types (torch optimizer states use int keys) and order.
"""

from __future__ import annotations

import base64
import math
import struct
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from poptrain._optional import require
from poptrain.checkpoints import _tensors
from poptrain.errors import CheckpointError, UnsafeStateError

ALLOWED = (
    "dict, list, tuple, str, int, float, bool, None, bytes, numpy arrays and scalars, "
    "torch tensors and torch.Size"
)
_KEY_TYPES = (str, int, float, bool, type(None))
# JSON numbers past 64 bits are legal but many readers mangle them, and Python
# limits int<->decimal conversion of huge ints; hex text has neither problem.
_BIG_INT = 2**63


def _type_name(x: Any) -> str:
    cls = type(x)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _unsafe(path: str, x: Any, why: str = "") -> UnsafeStateError:
    return UnsafeStateError(
        f"{path} is a {_type_name(x)}{why}, which cannot be saved without pickle; "
        f"a checkpoint state may only hold {ALLOWED}"
    )


class Encoder:
    """Turns a state into a JSON tree, collecting arrays and tensor bytes.

    ``arrays`` maps member names (``arrays/<n>.npy``, ``tensors/<n>.bin``) to
    the numpy arrays to write under them.

    Example:
        >>> enc = Encoder()
        >>> enc.encode({"lr": 0.1, "shape": (2, 3)}, "state")
        {'t': 'dict', 'v': [['lr', 0.1], ['shape', {'t': 'tuple', 'v': [2, 3]}]]}
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._open: set[int] = set()  # containers on the current path, to catch cycles

    def encode(self, x: Any, path: str) -> Any:
        cls = type(x)
        if x is None or cls is bool or cls is str:
            return x
        if cls is int:
            return x if -_BIG_INT < x < _BIG_INT else {"t": "int", "v": hex(x)}
        if cls is float:
            # The raw bits, so that even the sign and payload of a NaN survive.
            return x if math.isfinite(x) else {"t": "float", "v": struct.pack(">d", x).hex()}
        if cls is bytes:
            return {"t": "bytes", "v": base64.b64encode(x).decode("ascii")}
        if cls in (list, tuple, dict, OrderedDict):
            return self._container(x, path)
        if isinstance(x, np.generic):
            return {"t": "npscalar", "ref": self._array(np.asarray(x), path, x)}
        if cls is np.ndarray:
            return {"t": "ndarray", "ref": self._array(x, path, x)}
        torch = _tensors.loaded_torch()
        if torch is not None:
            if cls is torch.Size:
                return {"t": "size", "v": [int(n) for n in x]}
            if cls is torch.Tensor or cls is torch.nn.Parameter:
                record, raw = _tensors.tensor_to_record(x, path, torch)
                name = f"tensors/{len(self.arrays)}.bin"
                self.arrays[name] = raw
                return {"t": "tensor", "ref": name, **record}
            if isinstance(x, torch.Tensor):
                raise _unsafe(path, x, " (a Tensor subclass; convert it with .as_subclass(torch.Tensor))")
        if isinstance(x, np.ndarray):
            raise _unsafe(path, x, " (an ndarray subclass; convert it with np.asarray)")
        raise _unsafe(path, x)

    def _array(self, arr: np.ndarray, path: str, original: Any) -> str:
        if arr.dtype.hasobject:
            raise _unsafe(path, original, f" of dtype {arr.dtype}")
        name = f"arrays/{len(self.arrays)}.npy"
        self.arrays[name] = arr
        return name

    def _container(self, x: Any, path: str) -> Any:
        if id(x) in self._open:
            raise UnsafeStateError(f"{path} contains itself; a checkpoint state must be a tree")
        self._open.add(id(x))
        try:
            if type(x) is list:
                return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(x)]
            if type(x) is tuple:
                return {"t": "tuple", "v": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(x)]}
            items = []
            for k, v in x.items():
                if type(k) not in _KEY_TYPES:
                    raise UnsafeStateError(
                        f"{path} has a key of type {_type_name(k)} ({k!r}); "
                        "dict keys may only be str, int, float, bool or None"
                    )
                items.append([self.encode(k, path), self.encode(v, f"{path}[{k!r}]")])
            if type(x) is dict:
                return {"t": "dict", "v": items}
            node: dict[str, Any] = {"t": "odict", "v": items}
            # torch's Module.state_dict() keeps per-module versions here, which
            # load_state_dict reads; it is plain data, so it travels too.
            meta = getattr(x, "_metadata", None)
            if meta is not None:
                node["meta"] = self.encode(meta, f"{path}._metadata")
            return node
        finally:
            self._open.discard(id(x))


class Decoder:
    """Rebuilds a state from its JSON tree; ``read`` fetches a referenced array.

    Every node is checked; anything unexpected raises CheckpointError naming
    the key path, so a tampered tree fails loudly instead of half-loading.
    """

    def __init__(self, read: Callable[[str, str], np.ndarray], *, tensor_byteorder_ok: bool) -> None:
        self._read = read
        self._tensor_byteorder_ok = tensor_byteorder_ok
        self._by_tag: dict[str, Callable[[dict, str], Any]] = {
            "int": self._tag_int,
            "float": self._tag_float,
            "bytes": self._tag_bytes,
            "tuple": self._tag_tuple,
            "dict": self._tag_dict,
            "odict": self._tag_odict,
            "ndarray": self._tag_ndarray,
            "npscalar": self._tag_npscalar,
            "size": self._tag_size,
            "tensor": self._tag_tensor,
        }

    def decode(self, node: Any, path: str) -> Any:
        cls = type(node)
        if node is None or cls in (bool, str, int, float):
            return node
        if cls is list:
            return [self.decode(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if cls is not dict:
            raise CheckpointError(f"{path}: unexpected JSON node of type {cls.__name__}")
        tag = node.get("t")
        decode_tagged = self._by_tag.get(tag) if isinstance(tag, str) else None
        if decode_tagged is None:
            raise CheckpointError(f"{path}: unknown node tag {tag!r}")
        try:
            return decode_tagged(node, path)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path}: malformed {tag!r} node ({exc!r})") from exc

    def _tag_int(self, node: dict, path: str) -> int:
        return int(node["v"], 16)

    def _tag_float(self, node: dict, path: str) -> float:
        (value,) = struct.unpack(">d", bytes.fromhex(node["v"]))
        return value

    def _tag_bytes(self, node: dict, path: str) -> bytes:
        return base64.b64decode(node["v"], validate=True)

    def _tag_tuple(self, node: dict, path: str) -> tuple:
        return tuple(self.decode(v, f"{path}[{i}]") for i, v in enumerate(_list(node["v"])))

    def _items(self, node: dict, path: str) -> list[tuple[Any, Any]]:
        items = []
        for pair in _list(node["v"]):
            if type(pair) is not list or len(pair) != 2:
                raise CheckpointError(f"{path}: a dict item is not a [key, value] pair")
            k = self.decode(pair[0], path)
            if type(k) not in _KEY_TYPES:
                raise CheckpointError(f"{path}: a dict key decodes to {_type_name(k)}")
            items.append((k, self.decode(pair[1], f"{path}[{k!r}]")))
        return items

    def _tag_dict(self, node: dict, path: str) -> dict:
        return dict(self._items(node, path))

    def _tag_odict(self, node: dict, path: str) -> OrderedDict:
        out = OrderedDict(self._items(node, path))
        if "meta" in node:
            out._metadata = self.decode(node["meta"], f"{path}._metadata")  # type: ignore[attr-defined]
        return out

    def _tag_ndarray(self, node: dict, path: str) -> np.ndarray:
        return self._read(node["ref"], path)

    def _tag_npscalar(self, node: dict, path: str) -> np.generic:
        arr = self._read(node["ref"], path)
        if arr.ndim != 0:
            raise CheckpointError(f"{path}: a numpy scalar is stored with shape {arr.shape}")
        return arr[()]

    def _tag_size(self, node: dict, path: str) -> Any:
        torch = require("torch", feature="loading a checkpoint that holds torch.Size")
        dims = _list(node["v"])
        if not all(type(n) is int for n in dims):
            raise CheckpointError(f"{path}: malformed torch.Size {dims!r}")
        return torch.Size(dims)

    def _tag_tensor(self, node: dict, path: str) -> Any:
        if not self._tensor_byteorder_ok:
            raise CheckpointError(f"{path}: tensor bytes were written on a machine of the other byte order")
        return _tensors.tensor_from_record(node, self._read(node["ref"], path), path)


def _list(v: Any) -> list:
    if type(v) is not list:
        raise TypeError(f"expected a JSON list, got {type(v).__name__}")
    return v
