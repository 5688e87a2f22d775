"""Turn a training state into bytes and back, without pickle.

A checkpoint is an uncompressed zip archive:

- ``tree.json`` — the format name and version, the writer's byte order, and
  the structure of the state as typed JSON (see ``_tree``);
- ``arrays/<n>.npy`` — each numpy array or scalar, written by
  ``np.lib.format.write_array`` and read back with ``allow_pickle=False``;
- ``tensors/<n>.bin`` — each torch tensor's raw bytes, in the same ``.npy``
  framing (uint8); its dtype and shape live in the tree.

Nothing in it is ever unpickled: not by ``pickle``, not by ``np.load`` and not
by ``torch.load``, so a crafted file can fail to load but cannot run code.
The archive is byte-for-byte deterministic (fixed member order, timestamps
and attributes, no compression), so equal states hash equal.

Example:
    >>> import numpy as np
    >>> state = {"step": 3, "w": np.arange(3.0), "betas": (0.9, 0.999)}
    >>> back = loads(dumps(state))
    >>> back["betas"], back["w"].dtype
    ((0.9, 0.999), dtype('float64'))
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from typing import Any

import numpy as np

from poptrain.checkpoints._tree import Decoder, Encoder
from poptrain.errors import CheckpointError

FORMAT = "poptrain.checkpoint"
VERSION = 1
_TREE = "tree.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time zip can record
_MEMBER_PREFIXES = ("arrays/", "tensors/")


def dumps(state: Any) -> bytes:
    """Serialise ``state`` to deterministic bytes.

    Args:
        state: nested dict / list / tuple of str, int, float, bool, None,
            bytes, numpy arrays and scalars, torch tensors (any dtype and
            device; saved from the CPU) and ``torch.Size``. Dict keys may be
            str, int, float, bool or None; their types and order are kept.

    Returns:
        The checkpoint bytes. Equal states give equal bytes.

    Raises:
        UnsafeStateError: the state holds anything else (an object, a lambda,
            a set, an object-dtype array ...); the message names its key path,
            e.g. ``state['optimizer']['param_groups'][0]['foo']``, and type.

    Example:
        >>> dumps({"a": 1}) == dumps({"a": 1})
        True
    """
    encoder = Encoder()
    tree = encoder.encode(state, "state")
    header = {"format": FORMAT, "version": VERSION, "byteorder": sys.byteorder, "tree": tree}
    text = json.dumps(header, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        with zf.open(_member(_TREE), "w") as f:
            f.write(text.encode("ascii"))
        for name, arr in encoder.arrays.items():
            # Zip64 headers depend only on the size, so the bytes stay deterministic.
            with zf.open(_member(name), "w", force_zip64=arr.nbytes > 2**30) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """Rebuild the state that :func:`dumps` wrote. Runs no code from ``data``.

    Tensors come back on the CPU; torch is imported only if the checkpoint
    holds tensors.

    Raises:
        CheckpointError: ``data`` is not a poptrain checkpoint, is of an
            unknown version, or is corrupted or tampered with.

    Example:
        >>> loads(dumps([1, (2.5, None)]))
        [1, (2.5, None)]
    """
    try:
        return _loads(data)
    except (CheckpointError, ImportError, MemoryError):
        raise
    except RecursionError:
        raise CheckpointError("corrupted checkpoint: the state is nested too deeply to load") from None
    except Exception as exc:
        # Crafted bytes can trip any parser below (zipfile raises NotImplementedError,
        # UnicodeDecodeError, struct.error ...); all of them mean the same to a caller.
        raise CheckpointError(f"corrupted checkpoint: {type(exc).__name__}: {exc}") from exc


def _loads(data: bytes) -> Any:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"not a poptrain checkpoint: not a readable zip archive ({exc})") from exc
    with zf:
        header = _read_header(zf)
        names = set(zf.namelist())

        def read(ref: Any, path: str) -> np.ndarray:
            if not isinstance(ref, str) or not ref.startswith(_MEMBER_PREFIXES) or ref not in names:
                raise CheckpointError(f"{path}: refers to a missing archive member {ref!r}")
            return _read_array(zf, ref, path)

        decoder = Decoder(read, tensor_byteorder_ok=header.get("byteorder") == sys.byteorder)
        return decoder.decode(header["tree"], "state")


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix everywhere, so hashes agree across platforms
    info.external_attr = 0o644 << 16
    return info


def _read_header(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        raw = zf.read(_TREE)
    except KeyError:
        raise CheckpointError(f"not a poptrain checkpoint: the archive has no {_TREE}") from None
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise CheckpointError(f"corrupted checkpoint: cannot read {_TREE} ({exc})") from exc
    try:
        header = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"corrupted checkpoint: {_TREE} is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT or "tree" not in header:
        raise CheckpointError(f"not a poptrain checkpoint: {_TREE} does not name the format {FORMAT!r}")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint format version {header.get('version')!r} is not supported "
            f"(this poptrain reads version {VERSION}); upgrade poptrain"
        )
    return header


def _read_array(zf: zipfile.ZipFile, name: str, path: str) -> np.ndarray:
    try:
        with zf.open(name) as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
            # Reading to the end makes zipfile check the member's CRC-32.
            if f.read(1):
                raise CheckpointError(f"{path}: archive member {name} has trailing bytes")
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise CheckpointError(f"{path}: cannot read archive member {name} ({exc})") from exc
    return arr
