"""Search spaces: typed dimensions that always return values inside their domain.

Example:
    >>> import numpy as np
    >>> from poptrain.space import Space, Float, Choice
    >>> space = Space({"lr": Float(1e-4, 1e-1, log=True), "opt": Choice(["adam", "sgd"])})
    >>> space.validate(space.sample(np.random.default_rng(0)))
"""

from poptrain.space.dimensions import Choice, Dimension, Float, Int, Ordered, dimension_from_json
from poptrain.space.space import Space

__all__ = ["Choice", "Dimension", "Float", "Int", "Ordered", "Space", "dimension_from_json"]
