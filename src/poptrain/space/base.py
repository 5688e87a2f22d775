"""The interface every dimension implements."""

from __future__ import annotations

import abc
import json
from typing import Any, ClassVar

import numpy as np


class Dimension(abc.ABC):
    """One tunable hyperparameter: its domain, how to sample it and how to move it.

    Subclasses are value objects: two dimensions are equal when their JSON is.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """A value drawn from the dimension's prior."""

    @abc.abstractmethod
    def perturb(self, value: Any, rng: np.random.Generator, factor: float) -> Any:
        """A value near ``value``, moved in the direction of ``factor`` (e.g. 0.8 or 1.2)."""

    @abc.abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in the domain and has the declared type."""

    @abc.abstractmethod
    def to_unit(self, value: Any) -> float:
        """The position of ``value`` in ``[0, 1]``."""

    @abc.abstractmethod
    def from_unit(self, u: float) -> Any:
        """The domain value at position ``u`` (clipped into ``[0, 1]``)."""

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that :func:`dimension_from_json` turns back into this dimension."""

    def _key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dimension) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())
