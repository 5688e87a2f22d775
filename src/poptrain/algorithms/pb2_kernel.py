"""The time-varying kernel of PB2 as a scikit-learn kernel.

Column 0 of an input row is time (in intervals), the other columns are the
inputs of a squared-exponential kernel (the score before the interval and
the hyperparameters in unit coordinates)::

    k((t, x), (t', x')) = exp(-½ Σᵢ (xᵢ − x′ᵢ)² / ℓᵢ²) · (1 − ε)^(|t − t′| / 2)

``ε`` is how much of the similarity between two observations is forgotten
per interval between them (Parker-Holder et al. 2020, eq. 4, after Bogunovic
et al. 2016). Both ``ℓ`` (one per input column) and ``ε`` are
hyperparameters with bounds, so ``GaussianProcessRegressor`` fits them by
maximising the marginal likelihood like any built-in kernel; the gradients
are analytic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from poptrain._optional import require

_kernels = require("sklearn.gaussian_process.kernels", feature="PB2 (poptrain.algorithms.pb2)")
Hyperparameter = _kernels.Hyperparameter
Kernel = _kernels.Kernel


class TimeVaryingSE(Kernel):
    """Squared exponential over columns ``1:`` times ``(1 − ε)^(|Δt|/2)`` over column 0.

    ``groups`` maps each SE column to the index of its length scale, so that
    several columns can share one (PB2 gives the one-hot columns of a
    categorical dimension one length scale); by default each column has its
    own. The squared distances of each group are computed once per call, so
    the cost is ``n² · len(length_scale)``, not ``n² · columns``.

    Example:
        >>> import numpy as np
        >>> k = TimeVaryingSE(length_scale=[1.0], epsilon=0.19)
        >>> X = np.array([[0.0, 0.0], [2.0, 0.0]])
        >>> np.round(k(X), 3).tolist()
        [[1.0, 0.81], [0.81, 1.0]]
    """

    def __init__(
        self,
        length_scale: Any = 1.0,
        length_scale_bounds: Any = (1e-2, 1e2),
        epsilon: float = 0.1,
        epsilon_bounds: Any = (1e-3, 0.5),
        groups: Any = None,
    ) -> None:
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds
        self.epsilon = epsilon
        self.epsilon_bounds = epsilon_bounds
        self.groups = groups

    @property
    def anisotropic(self) -> bool:
        return bool(np.iterable(self.length_scale) and len(self.length_scale) > 1)  # type: ignore[arg-type]

    @property
    def requires_vector_input(self) -> bool:
        return True

    @property
    def hyperparameter_length_scale(self) -> Any:
        if self.anisotropic:
            return Hyperparameter("length_scale", "numeric", self.length_scale_bounds, len(self.length_scale))
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds)

    @property
    def hyperparameter_epsilon(self) -> Any:
        return Hyperparameter("epsilon", "numeric", self.epsilon_bounds)

    def _group_of_columns(self, columns: int) -> np.ndarray:
        scales = np.ravel(np.asarray(self.length_scale, dtype=float))
        if self.groups is not None:
            groups = np.asarray(self.groups, dtype=int)
            if groups.shape != (columns,) or groups.min() < 0 or groups.max() >= max(len(scales), 1):
                raise ValueError(f"groups {self.groups!r} do not fit {columns} columns and {len(scales)} length scales")
            return groups
        if len(scales) == 1:
            return np.zeros(columns, dtype=int)
        if len(scales) != columns:
            raise ValueError(f"{len(scales)} length scales for {columns} columns")
        return np.arange(columns)

    def __call__(self, X: Any, Y: Any = None, eval_gradient: bool = False) -> Any:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if Y is not None and eval_gradient:
            raise ValueError("the gradient can only be evaluated when Y is None")
        Y = X if Y is None else np.atleast_2d(np.asarray(Y, dtype=float))
        scales = np.ravel(np.asarray(self.length_scale, dtype=float))
        groups = self._group_of_columns(X.shape[1] - 1)
        # One (n, m) array of scaled squared distances per length scale.
        dist = [_sqdist(X[:, 1:][:, groups == g], Y[:, 1:][:, groups == g]) / scales[g] ** 2
                for g in range(len(scales))]
        eps = float(self.epsilon)
        dt = np.abs(X[:, :1] - Y[:, :1].T)
        K = np.exp(-0.5 * sum(dist) + 0.5 * dt * np.log1p(-eps))  # type: ignore[arg-type]
        if not eval_gradient:
            return K
        # In the order of ``self.theta``: scikit-learn lists hyperparameters by name.
        grads = []
        if not self.hyperparameter_epsilon.fixed:
            # d K / d log ε = ε · K · (|Δt| / 2) · (−1 / (1 − ε))
            grads.append(K * 0.5 * dt * (-eps / (1.0 - eps)))
        if not self.hyperparameter_length_scale.fixed:
            # d K / d log ℓ_g = K · Σ_{i in g} (xᵢ − x′ᵢ)² / ℓ_g²
            grads += [K * d for d in dist] if self.anisotropic else [K * sum(dist)]  # type: ignore[arg-type]
        gradient = np.stack(grads, axis=2) if grads else np.empty((X.shape[0], X.shape[0], 0))
        return K, gradient

    def diag(self, X: Any) -> np.ndarray:
        return np.ones(np.atleast_2d(X).shape[0])

    def is_stationary(self) -> bool:
        return True

    def __repr__(self) -> str:
        scale = np.ravel(np.asarray(self.length_scale, dtype=float))
        shown = ", ".join(f"{s:.3g}" for s in scale)
        return f"TimeVaryingSE(length_scale=[{shown}], epsilon={float(self.epsilon):.3g})"


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[1] == 1:
        return (a - b.T) ** 2
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)
