"""JSON for strategies and their parts, so experiments can be stored and compared.

Scorers, selections, explores and strategies are small value objects. Each
class has a ``kind`` and is registered under it in the registry of its
``family``; ``to_json`` writes ``{"kind": ..., **parameters}`` and the
registry's ``from_json`` reads it back into an equal object.

A new explore (PB2, or a user's) registers itself with
:func:`register_explore` and then round-trips like the built-in ones.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, ClassVar, Mapping, TypeVar

from poptrain.errors import ConfigError

C = TypeVar("C", bound=type)


class Component:
    """Base of every serialisable algorithm part.

    Subclasses are frozen dataclasses with a ``kind`` and a ``family``; the
    default ``to_json``/``from_json`` map their fields to JSON one to one.
    """

    kind: ClassVar[str]
    family: ClassVar[str]

    def _params(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        """``{"kind": ..., **parameters}``, ready for ``json.dumps``."""
        return {"kind": self.kind, **self._params()}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Any:
        return cls(**params)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any:
        if not isinstance(data, Mapping) or data.get("kind") != cls.kind:
            raise ConfigError(f"expected a JSON object with kind {cls.kind!r}, got {data!r}")
        params = {k: v for k, v in data.items() if k != "kind"}
        try:
            return cls._from_params(params)
        except TypeError as exc:
            raise ConfigError(f"cannot build {cls.__name__} from {dict(data)!r}: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Component):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Registry:
    """Classes of one family by kind, with lazily imported modules for optional kinds."""

    def __init__(self, family: str, lazy: Mapping[str, str] | None = None) -> None:
        self.family = family
        self._classes: dict[str, type] = {}
        self._lazy = dict(lazy or {})

    def register(self, kind: str, cls: C) -> C:
        if not isinstance(cls, type) or not issubclass(cls, Component) or cls.family != self.family:
            raise ConfigError(f"only {self.family} classes can be registered as {self.family}s, got {cls!r}")
        known = self._classes.get(kind)
        reloaded = known is not None and (known.__module__, known.__qualname__) == (cls.__module__, cls.__qualname__)
        if known is not None and known is not cls and not reloaded:
            raise ConfigError(f"{self.family} kind {kind!r} is already registered to {known.__qualname__}")
        if cls.__dict__.get("kind") != kind:
            raise ConfigError(f"{cls.__qualname__}.kind is {getattr(cls, 'kind', None)!r}, not {kind!r}")
        self._classes[kind] = cls
        return cls

    def kinds(self) -> list[str]:
        return sorted(set(self._classes) | set(self._lazy))

    def get(self, kind: Any) -> type:
        if kind not in self._classes and kind in self._lazy:
            module = self._lazy[kind]
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise  # the module exists but lacks a dependency: keep the pip hint
                raise ConfigError(f"{self.family} kind {kind!r} needs {module}, which this version lacks") from None
        if kind not in self._classes:
            raise ConfigError(f"unknown {self.family} kind {kind!r}; known: {self.kinds()}")
        return self._classes[kind]

    def from_json(self, data: Any) -> Any:
        if not isinstance(data, Mapping) or "kind" not in data:
            raise ConfigError(f"a {self.family} must be a JSON object with a 'kind', got {data!r}")
        return self.get(data["kind"]).from_json(data)


SCORERS = Registry("scorer")
SELECTIONS = Registry("selection")
EXPLORES = Registry(
    "explore", lazy={"pb2": "poptrain.algorithms.pb2", "diversity_guard": "poptrain.algorithms.diversity"}
)
STRATEGIES = Registry("strategy")


def _registrar(registry: Registry) -> Callable[..., Any]:
    def register(kind: str, cls: type | None = None) -> Any:
        if cls is None:
            return lambda c: registry.register(kind, c)
        return registry.register(kind, cls)

    register.__doc__ = (
        f"Register a {registry.family} class under ``kind`` (also usable as a decorator).\n\n"
        f"The class must subclass the {registry.family} base class and set ``kind``."
    )
    return register


register_scorer = _registrar(SCORERS)
register_selection = _registrar(SELECTIONS)
register_explore = _registrar(EXPLORES)
register_strategy = _registrar(STRATEGIES)


def scorer_from_json(data: Mapping[str, Any]) -> Any:
    return SCORERS.from_json(data)


def selection_from_json(data: Mapping[str, Any]) -> Any:
    return SELECTIONS.from_json(data)


def explore_from_json(data: Mapping[str, Any]) -> Any:
    return EXPLORES.from_json(data)


def strategy_from_json(data: Mapping[str, Any]) -> Any:
    """The strategy described by ``data`` (as written by ``PBT.to_json``)."""
    return STRATEGIES.from_json(data)


def function_ref(fn: Callable[..., Any]) -> str:
    """``"module:qualname"`` of a function that can be imported again by that name.

    Lambdas and functions defined inside functions have no such name, and a
    stored experiment must be able to find its explore function again.
    """
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<lambda>" in qualname or "<locals>" in qualname:
        raise ConfigError(
            f"{fn!r} cannot be stored: a custom explore function must be defined at the top level "
            f"of a module (not a lambda or a nested function) so it can be imported again by name"
        )
    ref = f"{module}:{qualname}"
    if import_function(ref) is not fn:
        raise ConfigError(f"{fn!r} cannot be stored: importing {ref!r} gives a different object")
    return ref


def import_function(ref: str) -> Callable[..., Any]:
    """The function named by ``"module:qualname"``; ConfigError if it cannot be imported."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ConfigError(f"a function reference must look like 'module:qualname', got {ref!r}")
    module_name, qualname = ref.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import the function {ref!r}: {exc}") from None
    if not callable(obj):
        raise ConfigError(f"{ref!r} is not callable")
    return obj
