"""Nothing unsafe is saved, and loading never runs code: tampered or crafted files are refused."""

from __future__ import annotations

import enum
import io
import json
import pickle
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from poptrain.checkpoints import dumps, loads
from poptrain.errors import CheckpointError, UnsafeStateError

try:
    import torch
except ImportError:  # the core must work without torch; only the torch cases skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch: pip install torch")


class Custom:
    pass


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (Custom(), "Custom"),
        (lambda: 1, "function"),
        ({1, 2}, "set"),
        (frozenset(), "frozenset"),
        (np.array([1, "a"], dtype=object), "ndarray"),
        (np.ma.masked_array([1, 2], mask=[0, 1]), "MaskedArray"),
        (defaultdict(list), "defaultdict"),
        (Color.RED, "Color"),
        (1 + 2j, "complex"),
        (bytearray(b"x"), "bytearray"),
        (range(3), "range"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_unsafe_value_is_refused_with_its_key_path_and_type(value: Any, type_name: str) -> None:
    state = {"optimizer": {"param_groups": [{"lr": 0.1, "foo": value}]}}
    with pytest.raises(UnsafeStateError) as info:
        dumps(state)
    message = str(info.value)
    assert "state['optimizer']['param_groups'][0]['foo']" in message
    assert type_name in message


@needs_torch
def test_sparse_tensor_is_refused_with_its_path() -> None:
    with pytest.raises(UnsafeStateError, match=r"state\['w'\] is a torch.sparse_coo tensor"):
        dumps({"w": torch.zeros(3).to_sparse()})


@needs_torch
def test_tensor_subclass_is_refused_with_a_hint() -> None:
    class Tagged(torch.Tensor):
        pass

    with pytest.raises(UnsafeStateError, match=r"state\[0\] is a .*Tagged \(a Tensor subclass; convert it with"):
        dumps([torch.zeros(2).as_subclass(Tagged)])


def test_unsafe_error_is_a_checkpoint_error_and_a_type_error() -> None:
    with pytest.raises(CheckpointError):
        dumps([object()])
    with pytest.raises(TypeError):
        dumps([object()])


def test_paths_name_int_keys_and_tuple_positions() -> None:
    with pytest.raises(UnsafeStateError, match=r"state\['state'\]\[3\]\['exp_avg'\]\[1\] is a .*Custom"):
        dumps({"state": {3: {"exp_avg": (1, Custom())}}})


def test_unsupported_key_type_is_named() -> None:
    with pytest.raises(UnsafeStateError, match=r"state\['a'\] has a key of type tuple"):
        dumps({"a": {(1, 2): 3}})


def test_a_cycle_is_refused_not_recursed_forever() -> None:
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(UnsafeStateError, match=r"state\[1\] contains itself"):
        dumps(loop)


def test_shared_subtrees_are_fine() -> None:
    shared = [1, 2]
    assert loads(dumps([shared, shared])) == [[1, 2], [1, 2]]


# --- corrupted and tampered bytes ---------------------------------------------


def _state() -> dict:
    state = {"w": np.arange(100, dtype=np.float64), "lr": 0.1, "v": np.arange(50, dtype=np.float32)}
    if torch is not None:
        state["t"] = torch.arange(50.0)
    return state


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"PK\x03\x04" + b"\0" * 40, dumps(_state())[:-30], dumps(_state())[:200]],
    ids=["empty", "garbage", "fake-zip-magic", "truncated-end", "truncated-start"],
)
def test_unreadable_bytes_raise_checkpoint_error(data: bytes) -> None:
    with pytest.raises(CheckpointError):
        loads(data)


def test_every_flipped_byte_in_the_data_is_caught() -> None:
    data = dumps(_state())
    # Flip bytes across the whole file; CRC-32 checks, header checks and the
    # tree's own checks must refuse each one or, at worst, load the same state.
    for offset in range(0, len(data), 7):
        bad = bytearray(data)
        bad[offset] ^= 0xFF
        try:
            back = loads(bytes(bad))
        except CheckpointError:
            continue
        assert repr(back) == repr(_state()), offset


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _tree(tree: Any, **header: Any) -> bytes:
    return json.dumps({"format": "poptrain.checkpoint", "version": 1, "byteorder": "little", "tree": tree,
                       **header}).encode()


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ({"other.json": b"{}"}, "no tree.json"),
        ({"tree.json": b"not json"}, "not valid JSON"),
        ({"tree.json": json.dumps({"format": "x", "tree": 1}).encode()}, "does not name the format"),
        ({"tree.json": _tree(1, version=99)}, "version 99 is not supported"),
        ({"tree.json": _tree({"t": "pickle", "v": "gASV"})}, "unknown node tag 'pickle'"),
        ({"tree.json": _tree({"t": "dict", "v": [["a", {"x": 1}]]})}, r"state\['a'\]: unknown node tag None"),
        ({"tree.json": _tree({"t": "ndarray", "ref": "arrays/9.npy"})}, "missing archive member"),
        ({"tree.json": _tree({"t": "ndarray", "ref": "../../etc/passwd"})}, "missing archive member"),
        ({"tree.json": _tree({"t": "dict", "v": [[[1], 2]]})}, "dict key decodes to list"),
        pytest.param(
            {"tree.json": _tree({"t": "tensor", "ref": "tensors/0.bin", "dtype": "Tensor", "shape": [1]}),
             "tensors/0.bin": _npy(np.zeros(4, np.uint8))}, "unknown tensor dtype 'Tensor'", marks=needs_torch),
    ],
    ids=["no-tree", "bad-json", "wrong-format", "future-version", "unknown-tag", "untagged-object",
         "missing-member", "path-escape", "list-key", "bad-dtype"],
)
def test_malformed_archives_are_refused_with_a_clear_message(members: dict, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        loads(_zip(members))


# --- pickle payloads never run --------------------------------------------------


class Payload:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "payload-ran"


@needs_torch
def test_the_payload_really_runs_when_unpickled(marker: Path) -> None:
    # The control: without this, the tests below could pass with a dud payload.
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.read_text() == "ran"
    marker.unlink()
    buf = io.BytesIO()
    torch.save({"x": Payload(marker)}, buf)
    torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert marker.exists()


@needs_torch
def test_torch_save_file_with_payload_is_refused_without_running(marker: Path) -> None:
    buf = io.BytesIO()
    torch.save({"model": Payload(marker)}, buf)
    with pytest.raises(CheckpointError, match="not a poptrain checkpoint"):
        loads(buf.getvalue())
    assert not marker.exists()


def test_plain_pickle_file_is_refused_without_running(marker: Path) -> None:
    with pytest.raises(CheckpointError):
        loads(pickle.dumps({"state": Payload(marker)}))
    assert not marker.exists()


def test_object_array_with_payload_inside_our_format_is_refused_without_running(marker: Path) -> None:
    npy = io.BytesIO()
    np.save(npy, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    crafted = _zip({"tree.json": _tree({"t": "ndarray", "ref": "arrays/0.npy"}), "arrays/0.npy": npy.getvalue()})
    # The control: numpy with pickle allowed would run it.
    np.load(io.BytesIO(npy.getvalue()), allow_pickle=True)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match="cannot read archive member arrays/0.npy"):
        loads(crafted)
    assert not marker.exists()


@needs_torch
def test_pickled_tensor_blob_in_place_of_tensor_bytes_is_refused_without_running(marker: Path) -> None:
    blob = io.BytesIO()
    torch.save({"t": Payload(marker)}, blob)
    tree = {"t": "tensor", "ref": "tensors/0.bin", "dtype": "float32", "shape": [1],
            "requires_grad": False, "parameter": False}
    for name in ("tensors/0.bin", "tensors.pt"):
        crafted = _zip({"tree.json": _tree({**tree, "ref": name}), name: blob.getvalue()})
        with pytest.raises(CheckpointError):
            loads(crafted)
    assert not marker.exists()


@needs_torch
def test_edited_tree_without_fixing_the_crc_is_refused() -> None:
    data = dumps(torch.zeros(4))
    with pytest.raises(CheckpointError, match="Bad CRC-32 for file 'tree.json'"):
        loads(data.replace(b'"shape":[4]', b'"shape":[5]'))


@needs_torch
def test_wrong_byte_count_for_a_tensor_is_refused_even_with_valid_crcs() -> None:
    with zipfile.ZipFile(io.BytesIO(dumps(torch.zeros(4)))) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["tree.json"] = members["tree.json"].replace(b'"shape":[4]', b'"shape":[5]')
    with pytest.raises(CheckpointError, match="tensor data has 16 bytes, expected 20"):
        loads(_zip(members))
