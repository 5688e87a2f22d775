"""A search space: a nested config whose leaves are dimensions or constants."""

from __future__ import annotations

import copy
import json
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from poptrain.errors import SpaceError
from poptrain.space import _values as V
from poptrain.space.dimensions import Dimension, dimension_from_json

Path = tuple[str, ...]
_TAG = "$dimension"
_FORMAT = 1


def show(path: Sequence[str]) -> str:
    """A path as users write it in messages: ``optimizer.lr``."""
    return ".".join(path)


def _as_path(path: str | Sequence[str]) -> Path:
    if isinstance(path, str):
        return (path,)
    return tuple(path)


class Space:
    """Where each tunable value of a config lives and what values it may take.

    ``spec`` is a nested dict whose leaves are :class:`Dimension` objects
    (tunable) or JSON constants, which every config carries unchanged.

    Example:
        >>> import numpy as np
        >>> from poptrain.space import Float, Ordered
        >>> space = Space({"optimizer": {"lr": Float(1e-4, 1e-1, log=True)},
        ...                "batch_size": Ordered([32, 64, 128]), "epochs": 10})
        >>> space.paths
        [('batch_size',), ('optimizer', 'lr')]
        >>> config = space.sample(np.random.default_rng(0))
        >>> config["epochs"], space.get(config, ("batch_size",)) in (32, 64, 128)
        (10, True)
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if isinstance(spec, Space):
            spec = spec._spec
        self._dims: dict[Path, Dimension] = {}
        self._spec = self._normalise(spec, ())
        self.paths: list[Path] = sorted(self._dims)

    def _normalise(self, spec: Any, path: Path) -> dict[str, Any]:
        if not isinstance(spec, Mapping):
            raise SpaceError(f"{show(path) or 'the space'}: expected a dict, got {spec!r}")
        out: dict[str, Any] = {}
        for key, value in spec.items():
            if not isinstance(key, str):
                raise SpaceError(f"{show(path) or 'the space'}: key {key!r} is not a string")
            if key == _TAG:
                raise SpaceError(f"{show(path + (key,))}: the key {_TAG!r} is reserved")
            here = path + (key,)
            if isinstance(value, Dimension):
                self._dims[here] = value
                out[key] = value
            elif isinstance(value, Mapping):
                out[key] = self._normalise(value, here)
            else:
                _check_constant(value, here)
                out[key] = value
        return out

    @property
    def dimensions(self) -> dict[Path, Dimension]:
        """The tunable dimensions by path, in the order of :attr:`paths`."""
        return {p: self._dims[p] for p in self.paths}

    def dimension(self, path: str | Sequence[str]) -> Dimension:
        """The dimension at ``path`` (a tuple of keys, or one key as a string)."""
        path = _as_path(path)
        if path not in self._dims:
            raise SpaceError(f"{show(path)!r} is not a dimension of this space; dimensions: "
                             f"{[show(p) for p in self.paths]}")
        return self._dims[path]

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A full config: constants copied, each dimension sampled (in path order)."""
        config = _constants(self._spec)
        for path in self.paths:
            _set(config, path, self._dims[path].sample(rng))
        return config

    def get(self, config: Mapping[str, Any], path: str | Sequence[str]) -> Any:
        """The value at ``path`` of ``config``; SpaceError if it is missing."""
        path = _as_path(path)
        node: Any = config
        for i, key in enumerate(path):
            if not isinstance(node, Mapping) or key not in node:
                raise SpaceError(f"the config has no value at {show(path)!r} "
                                 f"(nothing at {show(path[: i + 1])!r})")
            node = node[key]
        return node

    def with_value(self, config: Mapping[str, Any], path: str | Sequence[str], value: Any) -> dict[str, Any]:
        """A deep copy of ``config`` with the value at ``path`` replaced."""
        out = copy.deepcopy(dict(config))
        _set(out, _as_path(path), value)
        return out

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise SpaceError naming the first path whose value is missing or outside its dimension."""
        if not isinstance(config, Mapping):
            raise SpaceError(f"a config must be a dict, got {config!r}")
        for path in self.paths:
            value = self.get(config, path)
            dim = self._dims[path]
            if not dim.contains(value):
                raise SpaceError(f"{show(path)!r} = {value!r} ({type(value).__name__}) "
                                 f"is not a value of {dim!r}")

    def to_unit(self, config: Mapping[str, Any]) -> np.ndarray:
        """The config's tunable values as positions in ``[0, 1]``, over :attr:`paths`."""
        out = np.empty(len(self.paths), dtype=float)
        for i, path in enumerate(self.paths):
            try:
                out[i] = self._dims[path].to_unit(self.get(config, path))
            except SpaceError as exc:
                raise SpaceError(f"{show(path)!r}: {exc}") from None
        return out

    def from_unit(self, vector: Sequence[float] | np.ndarray, base: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``base`` with each tunable value set from ``vector`` (ordered as :attr:`paths`)."""
        vector = np.asarray(vector, dtype=float)
        if vector.shape != (len(self.paths),):
            raise SpaceError(f"expected a vector of {len(self.paths)} unit positions "
                             f"({[show(p) for p in self.paths]}), got shape {vector.shape}")
        out = copy.deepcopy(dict(base))
        for u, path in zip(vector.tolist(), self.paths):
            try:
                _set(out, path, self._dims[path].from_unit(u))
            except SpaceError as exc:
                raise SpaceError(f"{show(path)!r}: {exc}") from None
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` turns it back into an equal space."""
        return {"format": _FORMAT, "spec": _tree_to_json(self._spec)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Space":
        if not isinstance(data, Mapping) or not isinstance(data.get("spec"), Mapping):
            raise SpaceError(f"a space must be a JSON object with a 'spec' object, got {data!r}")
        if data.get("format", _FORMAT) != _FORMAT:
            raise SpaceError(f"unsupported space format {data.get('format')!r}; this version reads {_FORMAT}")
        return cls(_tree_from_json(data["spec"], ()))

    def _key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Space({self._spec!r})"

    def diff(self, other: "Space") -> list[str]:
        """Human-readable differences between this space and ``other`` (empty when equal).

        Example:
            >>> from poptrain.space import Float
            >>> Space({"lr": Float(0.0, 1.0), "depth": 4}).diff(Space({"lr": Float(0.0, 2.0), "depth": 4}))
            ['lr: Float(0.0, 1.0) != Float(0.0, 2.0)']
        """
        mine, theirs = dict(_leaves(self._spec, ())), dict(_leaves(other._spec, ()))
        out = []
        for path in sorted(set(mine) | set(theirs)):
            a, b = mine.get(path), theirs.get(path)
            if a is None:
                out.append(f"{show(path)}: only in the other space ({b[1]})")
            elif b is None:
                out.append(f"{show(path)}: only in this space ({a[1]})")
            elif a[0] != b[0]:
                out.append(f"{show(path)}: {a[1]} != {b[1]}")
        return out


def _check_constant(value: Any, path: Path) -> None:
    if isinstance(value, Dimension):
        raise SpaceError(f"{show(path)}: dimensions inside lists are not supported; "
                         f"use a dict with one key per entry")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpaceError(f"{show(path)}: key {key!r} is not a string")
            _check_constant(item, path + (key,))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_constant(item, path[:-1] + (f"{path[-1]}[{i}]",))
    else:
        V.check_json_scalar(value, f"{show(path)} (a constant)")


def _constants(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, Dimension):
            continue
        out[key] = _constants(value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


def _set(config: dict[str, Any], path: Path, value: Any) -> None:
    node = config
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, Mapping):
            raise SpaceError(f"cannot set {show(path)!r}: {key!r} holds {child!r}, not a dict")
        elif not isinstance(child, dict):
            child = node[key] = dict(child)
        node = child
    node[path[-1]] = value


def _tree_to_json(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, Dimension):
            out[key] = {_TAG: value.to_json()}
        elif isinstance(value, dict):
            out[key] = _tree_to_json(value)
        else:
            out[key] = V.check_json_value(value, key)
    return out


def _tree_from_json(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        here = path + (key,)
        if isinstance(value, Mapping) and set(value) == {_TAG}:
            try:
                out[key] = dimension_from_json(value[_TAG])
            except SpaceError as exc:
                raise SpaceError(f"{show(here)}: {exc}") from None
        elif isinstance(value, Mapping):
            out[key] = _tree_from_json(value, here)
        else:
            out[key] = value
    return out


def _leaves(spec: Any, path: Path) -> Iterator[tuple[Path, tuple[str, str]]]:
    """(path, (comparison key, description)) for every dimension and constant leaf."""
    if isinstance(spec, Dimension):
        yield path, (json.dumps({_TAG: spec.to_json()}, sort_keys=True), repr(spec))
    elif isinstance(spec, Mapping) and spec:
        for key, value in spec.items():
            yield from _leaves(value, path + (key,))
    else:
        value = V.check_json_value(spec, show(path))
        yield path, (json.dumps(value, sort_keys=True), f"constant {value!r}")
