"""Seeded generators for decisions.

Every decision draws from a generator derived from the experiment seed and
the identity of the event (member and step, or generation), never from a
shared stream, so the same events give the same decisions whichever worker
processes them and in whatever order they arrive.
"""

from __future__ import annotations

import numpy as np

ASYNC = 0
GENERATION = 1
INIT = 2


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A generator determined by ``seed`` and the integer ``keys``.

    Example:
        >>> bool(rng_for(0, ASYNC, 3, 10).integers(100) == rng_for(0, ASYNC, 3, 10).integers(100))
        True
    """
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(k) for k in keys]])
