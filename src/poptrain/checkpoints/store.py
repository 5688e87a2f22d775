"""A content-hashed checkpoint store over any fsspec URL.

Keys look like ``<experiment>/member-0003/step-00000120-<sha[:12]>.ckpt``,
relative to the store's URL. A save returns a :class:`CheckpointRef` (key,
sha256, size) for the storage layer to record; a load checks the sha256
before it deserialises anything.

Example:
    >>> store = CheckpointStore("memory://poptrain-doc")
    >>> ref = store.save({"w": [1.0, 2.0]}, experiment="demo", member=0, step=10)
    >>> ref.key.startswith("demo/member-0000/step-00000010-")
    True
    >>> store.load(ref)
    {'w': [1.0, 2.0]}
    >>> store.collect_garbage("demo", keep=[]) == [ref.key]
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from poptrain.checkpoints.serialize import dumps, loads
from poptrain.errors import CheckpointError, ConfigError

# A temp file younger than this may belong to a writer that is still writing.
TEMP_MAX_AGE_S = 3600.0
_SUFFIX = ".ckpt"
_TEMP_SUFFIX = ".tmp"
_CHUNK = 8 * 2**20
# Object stores make an object visible only once its single PUT (or its
# multipart upload) completes, so a direct write is already atomic; their
# "rename" is a copy plus a delete, which would only add a window of two copies.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"})


@dataclass(frozen=True)
class CheckpointRef:
    """Where a checkpoint lies and what it must hash to.

    Attributes:
        key: path relative to the store URL.
        sha256: hex digest of the checkpoint bytes.
        size: length of the checkpoint in bytes.
    """

    key: str
    sha256: str
    size: int


class CheckpointStore:
    """Saves, loads, verifies and garbage-collects checkpoints under one URL.

    Args:
        url: a folder (``"poptrain_checkpoints"``, ``"/abs/dir"``,
            ``"file:///abs/dir"``) or any fsspec URL (``"memory://x"``,
            ``"s3://bucket/prefix"`` ...). A relative folder is made absolute
            now, so that every process reaches the same place.
        **storage_options: passed to the fsspec filesystem (e.g.
            ``client_kwargs={"endpoint_url": ...}`` for S3).

    Attributes:
        url: the normalised URL (``file:///abs/dir``, ``memory:///x``,
            ``s3://bucket/prefix``), for the experiment record; together with
            the same storage options it reopens this store anywhere.

    The store pickles as its URL and options and reopens the filesystem on
    first use in the new process.

    Example:
        >>> store = CheckpointStore("memory://poptrain-doc2")
        >>> store.url
        'memory:///poptrain-doc2'
    """

    def __init__(self, url: str | os.PathLike[str], *, durable: bool = False, **storage_options: Any) -> None:
        raw = os.fspath(url) if isinstance(url, os.PathLike) else url
        if not isinstance(raw, str) or not raw:
            raise ConfigError(
                f"The 'url' parameter of CheckpointStore must be a non-empty string. Got {url!r} instead."
            )
        self._options = dict(storage_options)
        self.durable = durable
        fs, root = fsspec.core.url_to_fs(raw, **self._options)
        self._fs: Any = fs
        self._root = root.rstrip("/")
        # Chained URLs ("simplecache::s3://…") cannot be rebuilt from the outer filesystem.
        self.url: str = raw if "::" in raw else fs.unstrip_protocol(self._root or "/")

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "options": self._options, "durable": self.durable}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url = state["url"]
        self._options = state["options"]
        self.durable = state.get("durable", False)
        self._fs = None
        self._root = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # The options may hold credentials, so they stay out of the repr.
        return f"CheckpointStore({self.url!r})"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, opened on first use after unpickling."""
        if self._fs is None:
            fs, root = fsspec.core.url_to_fs(self.url, **self._options)
            self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    def save(self, state: Any, *, experiment: str, member: int, step: int) -> CheckpointRef:
        """Serialise ``state`` and write it atomically; return its reference.

        Saving the same state at the same step again yields the same key and
        rewrites identical bytes, so a retried save is harmless.

        Raises:
            UnsafeStateError: the state holds something that needs pickle.
            ConfigError: a bad experiment name, member or step.
        """
        _check_name(experiment)
        for name, value in (("member", member), ("step", step)):
            if type(value) is not int or value < 0:
                raise ConfigError(
                    f"The '{name}' parameter of CheckpointStore.save must be an int >= 0. Got {value!r} instead."
                )
        data = dumps(state)  # before any I/O: a state that fails leaves nothing behind
        sha = hashlib.sha256(data).hexdigest()
        key = f"{experiment}/member-{member:04d}/step-{step:08d}-{sha[:12]}{_SUFFIX}"
        self._write(self._path(key), data)
        return CheckpointRef(key=key, sha256=sha, size=len(data))

    def load(self, ref: CheckpointRef) -> Any:
        """Read, verify and deserialise a checkpoint. Runs no code from it.

        Raises:
            CheckpointError: the checkpoint is missing, its sha256 differs
                from ``ref.sha256``, or it cannot be deserialised.
        """
        path = self._path(ref.key)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint {ref.key}: not found in {self.url}") from None
        except OSError as exc:
            raise CheckpointError(f"checkpoint {ref.key}: cannot be read from {self.url} ({exc})") from exc
        got = hashlib.sha256(data).hexdigest()
        if got != ref.sha256:
            raise CheckpointError(
                f"checkpoint {ref.key}: sha256 mismatch (expected {ref.sha256}, got {got}); refusing to load"
            )
        try:
            return loads(data)
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {ref.key}: {exc}") from exc

    def verify(self, ref: CheckpointRef) -> bool:
        """Whether the checkpoint exists with the expected size and sha256."""
        digest, size = hashlib.sha256(), 0
        try:
            with self.fs.open(self._path(ref.key), "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, OSError):
            return False
        return size == ref.size and digest.hexdigest() == ref.sha256

    def delete(self, key: str) -> None:
        """Delete one checkpoint; a missing one is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))

    def keys(self, experiment: str) -> list[str]:
        """Sorted keys of every complete checkpoint of ``experiment``."""
        return sorted(self._rel(p) for p in self._find(experiment) if _is_checkpoint(p))

    def collect_garbage(self, experiment: str, keep: Iterable[str], *, grace_s: float = 0.0) -> list[str]:
        """Delete every checkpoint of ``experiment`` whose key is not in ``keep``.

        Temp files of writers that died mid-write are deleted once older than
        ``TEMP_MAX_AGE_S`` (1 h); younger ones may still be being written.

        Args:
            experiment: the experiment whose checkpoints to sweep.
            keep: keys to keep — every member's latest checkpoint and every
                checkpoint a pending exploit refers to.
            grace_s: also keep checkpoints younger than this. A writer records
                its new checkpoint only after saving it; a ``keep`` computed in
                between misses it, and a grace period covers that gap.

        Returns:
            The deleted keys (checkpoints and stale temp files), sorted.

        Example:
            >>> store = CheckpointStore("memory://poptrain-doc3")
            >>> a = store.save(1, experiment="e", member=0, step=1)
            >>> b = store.save(2, experiment="e", member=0, step=2)
            >>> store.collect_garbage("e", keep=[b.key]) == [a.key]
            True
        """
        if isinstance(keep, str):
            raise ConfigError("The 'keep' parameter of collect_garbage must be a collection of keys, not one string.")
        kept = set(keep)
        deleted = []
        for path in self._find(experiment):
            key = self._rel(path)
            if _is_temp(path):
                if self._age(path) <= TEMP_MAX_AGE_S:
                    continue
            elif not _is_checkpoint(path) or key in kept or (grace_s > 0 and self._age(path) < grace_s):
                continue
            self.delete(key)
            deleted.append(key)
        return sorted(deleted)

    # --- internals -------------------------------------------------------

    def _path(self, key: str) -> str:
        parts = key.split("/") if isinstance(key, str) else []
        if not parts or any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise CheckpointError(
                f"invalid checkpoint key {key!r}: expected a relative path like 'exp/member-0000/…'"
            )
        return f"{self._root_path}/{key}"

    @property
    def _root_path(self) -> str:
        self.fs  # noqa: B018 - opens the filesystem, and with it _root, after unpickling
        return self._root

    def _rel(self, path: str) -> str:
        prefix = f"{self._root_path}/"
        return path[len(prefix):] if path.startswith(prefix) else path.lstrip("/")

    def _find(self, experiment: str) -> list[str]:
        _check_name(experiment)
        folder = self._path(experiment)
        # Other processes write here too: listings cached by the filesystem (s3fs) may be stale.
        self.fs.invalidate_cache(folder)
        try:
            return list(self.fs.find(folder))
        except FileNotFoundError:
            return []

    def _age(self, path: str) -> float:
        """Seconds since ``path`` was modified; 0 when unknown (so it counts as young)."""
        try:
            modified = self.fs.modified(path)
        except (NotImplementedError, OSError, KeyError, ValueError):
            return 0.0
        return max(0.0, time.time() - modified.timestamp())

    def _write(self, path: str, data: bytes) -> None:
        fs = self.fs
        if _is_local(fs):
            _write_local(path, data, durable=self.durable)
            return
        if set(_protocols(fs)) & _OBJECT_STORES:
            fs.pipe_file(path, data)
            return
        # Any other filesystem: temp name in the same folder, then rename, so a
        # reader that lists or opens the final key never sees a partial file.
        parent, name = posixpath.split(path)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}"
        fs.makedirs(parent, exist_ok=True)
        try:
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm_file(tmp)
            raise


def _write_local(path: str, data: bytes, *, durable: bool) -> None:
    """Write via a temp file and os.replace: the key appears whole or not at all.

    The rename alone is atomic for every process on the machine, and a crash
    of a worker cannot leave a partial file. Only a power loss can; the
    sha256 check on read then refuses the file. ``durable`` adds the fsyncs
    that survive power loss too, at a few milliseconds per checkpoint.
    """
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename itself is durable only once the folder is synced (POSIX).
    if durable and hasattr(os, "O_DIRECTORY"):
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _protocols(fs: Any) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _is_local(fs: Any) -> bool:
    return isinstance(fs, LocalFileSystem)


def _is_checkpoint(path: str) -> bool:
    name = posixpath.basename(path)
    return name.endswith(_SUFFIX) and not name.startswith(".")


def _is_temp(path: str) -> bool:
    name = posixpath.basename(path)
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


def _check_name(experiment: Any) -> None:
    # A "/" would let one experiment's folder contain another's, and its GC delete them.
    if not isinstance(experiment, str) or experiment in ("", ".", "..") or "/" in experiment or "\\" in experiment:
        raise ConfigError(
            "The 'experiment' parameter of CheckpointStore must be a non-empty name without '/' or '\\'. "
            f"Got {experiment!r} instead."
        )
