"""PB2: explore by a time-varying Gaussian-process bandit (Parker-Holder et al., NeurIPS 2020).

Needs scikit-learn and scipy (``pip install 'poptrain[pb2]'``).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from poptrain._optional import require
from poptrain.algorithms.explore import Explore, Perturb
from poptrain.algorithms.pb2_encoding import Encoding
from poptrain.algorithms.pb2_kernel import TimeVaryingSE
from poptrain.algorithms.serialize import EXPLORES, register_explore
from poptrain.algorithms.types import MemberView, Observation, PopulationView
from poptrain.errors import ConfigError, SpaceError
from poptrain.space import Space

_gp = require("sklearn.gaussian_process", feature="PB2 (poptrain.algorithms.pb2)")
_kernels = require("sklearn.gaussian_process.kernels", feature="PB2 (poptrain.algorithms.pb2)")
_optimize = require("scipy.optimize", feature="PB2 (poptrain.algorithms.pb2)")
_threadpoolctl = require("threadpoolctl", feature="PB2 (poptrain.algorithms.pb2)")

log = logging.getLogger("poptrain.algorithms.pb2")

# Inputs live in [0, 1]: shorter length scales than this only fit noise.
_LENGTH_SCALE_BOUNDS = (0.1, 20.0)
_LENGTH_SCALE_START = 0.5
_NOISE_BOUNDS = (1e-6, 10.0)
_VARIANCE_BOUNDS = (1e-2, 1e2)
_FIT_MAXITER = 50
# The fitted hyperparameters only steer the search: a loose tolerance saves most evaluations.
_FIT_FTOL = 1e-4
_MIN_OBSERVATIONS = 2
_FIT_ERRORS = (np.linalg.LinAlgError, ValueError, FloatingPointError, ArithmeticError)


class GPFitError(ArithmeticError):
    """The Gaussian process could not be fitted or gave non-finite predictions."""


@dataclass(frozen=True, kw_only=True)
class PB2(Explore):
    """Propose the explored config with a time-varying GP bandit (PB2).

    Use it as the explore of a :class:`~poptrain.algorithms.PBT` strategy
    with truncation selection, as in the paper::

        PBT(interval=4, selection=Truncation(0.25), explore=PB2())

    **The model.** Every finished interval of every member is one
    observation: input ``(t, s, x)`` — the step the interval started at, the
    score the weights had then, and the hyperparameters in unit coordinates
    of the space — and target the score change per step over the interval
    (negated for ``mode="min"``, so larger is always better). A Gaussian
    process with the kernel ``k_SE(s, x; s′, x′) · (1 − ε)^(|t − t′|/2)``
    (:class:`~poptrain.algorithms.pb2_kernel.TimeVaryingSE`; time counted in
    intervals, one length scale per input, ``ε`` within ``epsilon_bounds``)
    is fitted to the latest ``window`` observations by scikit-learn's
    ``GaussianProcessRegressor``. Intervals whose start score is unknown (a
    member's first) are left out.

    **The decision.** The exploiting member continues from the donor's
    weights, so the new point is ``(t, s)`` = the donor's step and latest
    score. PB2 returns the ``x`` that maximises the upper confidence bound
    ``μ(x) + √β · σ(x)``. ``β`` is ``ucb_beta``, or by default the paper's
    schedule ``0.2 + max(0, log(0.4 · n))`` for ``n`` observations. The
    maximum is searched from ``restarts`` starting points — the best of
    ``candidates`` uniform draws and the donor's own config — each improved
    by ``iterations`` rounds of batched random local moves with a shrinking
    radius. All draws come from the generator passed in, so a seed fixes the
    decision.

    **Pending points.** Members whose current config has no finished interval
    yet (typically those that exploited earlier in this round) are still
    being evaluated. As in the paper (after GP-BUCB), they enter ``σ`` as
    fantasy observations at the new point's ``(t, s)`` with zero-mean targets,
    which shrinks the bonus near them, so one round does not propose the
    same point twice. ``μ`` uses the real observations only.

    **Types.** Float and Int dimensions (log-scaled ones in log space, as
    ``Space.to_unit`` places them) and :class:`~poptrain.space.Ordered`
    choices are one unit coordinate each; an integer or an ordered choice is
    rounded to its nearest value *before* the acquisition is evaluated, so
    the search compares only values the dimension can take. An unordered
    :class:`~poptrain.space.Choice` of ``k`` values is ``k`` one-hot
    coordinates, each with its own length scale: the GP learns how much each
    category shifts the score change, and the acquisition search draws and
    switches categories jointly with the numeric values. This is the one-hot
    approach of Garrido-Merchán & Hernández-Lobato (2020) rather than
    PB2-Mix's EXP3 bandit over categories: the UCB of a category, evaluated
    with the numeric values best for it, plays the part of the bandit's arm
    score, and the same model shares data across categories through the
    numeric dimensions. Any other dimension type raises
    :class:`~poptrain.errors.ConfigError`, as does a space with nothing to
    tune (see :meth:`check_space`).

    **Fallback.** With fewer than two usable observations, or when the fit or
    the prediction fails numerically, the decision is ``fallback`` (by
    default :class:`~poptrain.algorithms.Perturb`); a failure is logged on
    the ``poptrain.algorithms.pb2`` logger with its reason and never stops
    the run.

    **Cost.** The fit is cubic in ``window`` and does not depend on the
    population or on how many observations are stored: the worker passes PB2
    only the latest ``window`` of them (:attr:`observations_needed`). With
    the default 128 a decision took 50–210 ms on one core of two-core
    machines, for populations of 8 and 64 with 2,000 stored observations,
    three quarters of it in fitting the kernel's hyperparameters; a window
    of 256 takes about twice as long (``python bench/quality.py --pb2-cost``
    measures it). The decisions of one synchronous generation see the same
    observations, and the score column is scaled by the range of every
    observed score, so they fit the same GP: it is fitted once and reused
    (at population 64, 16 exploits in 0.9 s instead of about 4 s).

    Args:
        ucb_beta: the UCB exploration weight ``β`` (``None``: the schedule above).
        window: how many of the latest observations the GP is fitted to.
        epsilon_bounds: bounds of the fitted forgetting rate ``ε`` per interval, in ``(0, 1)``.
        restarts: starting points of the acquisition search.
        candidates: uniform draws the starting points are picked from.
        iterations: local-search rounds per starting point.
        fallback: the explore used when the GP cannot decide.

    Example:
        >>> import numpy as np
        >>> from poptrain.algorithms import MemberView, Observation, PopulationView
        >>> from poptrain.space import Float, Space
        >>> space = Space({"lr": Float(0.0, 1.0)})
        >>> obs = [Observation(m, t, t + 1, 0.0, 1.0 - abs(lr - 0.7), {"lr": lr})
        ...        for t in range(1, 6) for m, lr in enumerate([0.1, 0.3, 0.5, 0.9])]
        >>> pop = PopulationView([MemberView(m, 6, {"lr": lr}, (1.0,)) for m, lr in enumerate([0.1, 0.3, 0.5, 0.9])],
        ...                      observations=obs)
        >>> new = PB2(ucb_beta=0.0)({"lr": 0.5}, space=space, rng=np.random.default_rng(0), population=pop, member_id=0)
        >>> abs(new["lr"] - 0.7) < 0.1
        True
    """

    ucb_beta: float | None = None
    window: int = 128
    epsilon_bounds: tuple[float, float] = (1e-3, 0.5)
    restarts: int = 5
    candidates: int = 128
    iterations: int = 10
    fallback: Explore = field(default_factory=Perturb)
    kind: ClassVar[str] = "pb2"

    def __post_init__(self) -> None:
        beta = self.ucb_beta
        if beta is not None and (isinstance(beta, bool) or not isinstance(beta, (int, float))
                                 or not math.isfinite(beta) or beta < 0):
            raise ConfigError(f"The 'ucb_beta' parameter of PB2 must be a finite number >= 0 or None. Got {beta!r} instead.")
        for name, low in (("window", _MIN_OBSERVATIONS), ("restarts", 1), ("candidates", 1), ("iterations", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"The '{name}' parameter of PB2 must be an int >= {low}. Got {value!r} instead.")
            object.__setattr__(self, name, int(value))
        bounds = self.epsilon_bounds
        try:
            lo, hi = (float(b) for b in bounds)
            ok = not any(isinstance(b, bool) for b in bounds) and 0 < lo <= hi < 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                f"The 'epsilon_bounds' parameter of PB2 must be two numbers (low, high) with 0 < low <= high < 1. "
                f"Got {bounds!r} instead."
            )
        object.__setattr__(self, "epsilon_bounds", (lo, hi))
        if beta is not None:
            object.__setattr__(self, "ucb_beta", float(beta))
        if not isinstance(self.fallback, Explore):
            raise ConfigError(f"The 'fallback' parameter of PB2 must be an Explore. Got {self.fallback!r} instead.")

    @property
    def observations_needed(self) -> int:
        """How many of the latest observations the worker should pass in (the data window)."""
        return self.window

    @staticmethod
    def check_space(space: Space) -> None:
        """Raise ConfigError unless PB2 can model every dimension of ``space`` and one is tunable.

        Example:
            >>> from poptrain.space import Choice, Space
            >>> PB2.check_space(Space({"opt": Choice(["adam"]), "epochs": 10}))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            poptrain.errors.ConfigError: PB2 needs a space with at least one tunable dimension ...
        """
        Encoding(space)

    # -- the decision ------------------------------------------------------------
    def __call__(self, config, *, space, rng, population, member_id):  # type: ignore[no-untyped-def]
        enc = Encoding(space)
        data = _Data.build(population.observations, enc, population.mode, self.window)
        if data is None:
            log.debug("PB2 uses %r for member %s: fewer than %d usable observations",
                      self.fallback, member_id, _MIN_OBSERVATIONS)
            return self._fall_back(config, space, rng, population, member_id)
        t_now, s_now = _new_point(config, population, member_id, enc)
        pending = _pending(population, member_id, enc, data.seen)
        try:
            # Small matrices: more BLAS threads only add contention with the trainers.
            with _threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
                u = self._propose(enc, data, t_now, s_now, pending, enc.encode(config), rng)
        except _FIT_ERRORS as exc:
            log.warning("PB2 falls back to %r for member %s: the Gaussian-process fit failed (%s: %s)",
                        self.fallback, member_id, type(exc).__name__, exc)
            return self._fall_back(config, space, rng, population, member_id)
        return enc.decode(u, config)

    def _fall_back(self, config, space, rng, population, member_id):  # type: ignore[no-untyped-def]
        return self.fallback(copy.deepcopy(dict(config)), space=space, rng=rng, population=population,
                             member_id=member_id)

    def _propose(self, enc: Encoding, data: "_Data", t_now: float, s_now: float, pending: np.ndarray,
                 donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        X, y, head = data.inputs(t_now, s_now)
        mean_gp = _fit(X, y, self.epsilon_bounds, enc.groups)
        var_gp = mean_gp
        if len(pending):
            # The posterior variance does not depend on the targets, so the
            # fantasies get zero-mean targets and the fitted kernel, unrefitted.
            Xp = np.hstack([np.tile(head, (len(pending), 1)), pending])
            var_gp = _gp.GaussianProcessRegressor(kernel=mean_gp.kernel_, optimizer=None, alpha=mean_gp.alpha)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                var_gp.fit(np.vstack([X, Xp]), np.concatenate([y, np.zeros(len(pending))]))
        beta = self.ucb_beta if self.ucb_beta is not None else 0.2 + max(0.0, math.log(0.4 * len(y)))
        kappa = math.sqrt(beta)

        # The bonus is the uncertainty about the score change itself, not about
        # a noisy measurement of it: the white noise is taken out of the variance.
        noise = float(mean_gp.kernel_.k2.noise_level)

        def ucb(U: np.ndarray) -> np.ndarray:
            Xq = np.hstack([np.tile(head, (len(U), 1)), U])
            mu, sd = var_gp.predict(Xq, return_std=True)
            if var_gp is not mean_gp:
                mu = mean_gp.predict(Xq)
            out = mu + kappa * np.sqrt(np.maximum(sd**2 - noise, 0.0))
            if not np.all(np.isfinite(out)):
                raise GPFitError("the acquisition is not finite")
            return out

        return _maximise(ucb, enc, donor, rng, self.restarts, self.candidates, self.iterations)

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> "PB2":
        params = dict(params)
        if isinstance(params.get("fallback"), Mapping):
            params["fallback"] = EXPLORES.from_json(params["fallback"])
        if isinstance(params.get("epsilon_bounds"), list):
            params["epsilon_bounds"] = tuple(params["epsilon_bounds"])
        return cls(**params)


# -- fitting and searching -------------------------------------------------------------
# The decisions of one synchronous generation fit the same observations: the
# first one fits, the others reuse its model. The fit is deterministic, so
# this changes no decision, only how often the same one is computed.
_FITS: OrderedDict[bytes, Any] = OrderedDict()
_FITS_KEPT = 4
_FITS_LOCK = threading.Lock()


def clear_shared_fits() -> None:
    """Forget the fits kept for reuse (to time a decision that fits from scratch)."""
    with _FITS_LOCK:
        _FITS.clear()


def _fit(X: np.ndarray, y: np.ndarray, epsilon_bounds: tuple[float, float], groups: list[int]) -> Any:
    key = hashlib.sha256(repr((X.shape, epsilon_bounds, list(groups))).encode() + X.tobytes() + y.tobytes()).digest()
    with _FITS_LOCK:
        gp = _FITS.get(key)
        if gp is not None:
            _FITS.move_to_end(key)
            return gp
    gp = _fit_once(X, y, epsilon_bounds, groups)
    with _FITS_LOCK:
        _FITS[key] = gp
        while len(_FITS) > _FITS_KEPT:
            _FITS.popitem(last=False)
    return gp


def _fit_once(X: np.ndarray, y: np.ndarray, epsilon_bounds: tuple[float, float], groups: list[int]) -> Any:
    lo, hi = epsilon_bounds
    # The score column gets length scale 0; the columns of each dimension share the next ones.
    groups = [0] + [g + 1 for g in groups]
    kernel = (
        _kernels.ConstantKernel(1.0, _VARIANCE_BOUNDS)
        * TimeVaryingSE(
            length_scale=np.full(max(groups) + 1, _LENGTH_SCALE_START), length_scale_bounds=_LENGTH_SCALE_BOUNDS,
            epsilon=min(max(0.1, lo), hi), epsilon_bounds=(lo, hi) if lo < hi else "fixed", groups=groups,
        )
        + _kernels.WhiteKernel(0.1, _NOISE_BOUNDS)
    )
    gp = _gp.GaussianProcessRegressor(kernel=kernel, alpha=1e-8, normalize_y=False, optimizer=_lbfgs)
    with warnings.catch_warnings():
        # Hitting a bound of a hyperparameter is expected with little data.
        warnings.simplefilter("ignore")
        gp.fit(X, y)
    if not np.isfinite(gp.log_marginal_likelihood_value_):
        raise GPFitError("the marginal likelihood is not finite")
    return gp


def _lbfgs(obj_func: Callable[..., Any], initial_theta: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, float]:
    res = _optimize.minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds,
                             options={"maxiter": _FIT_MAXITER, "ftol": _FIT_FTOL})
    return res.x, float(res.fun)


def _maximise(acq: Callable[[np.ndarray], np.ndarray], enc: Encoding, donor: np.ndarray,
              rng: np.random.Generator, restarts: int, candidates: int, iterations: int) -> np.ndarray:
    starts = np.vstack([enc.random(candidates, rng), donor[None, :]])
    values = acq(starts)
    top = np.argsort(-values, kind="stable")[:restarts]
    points, best = starts[top].copy(), values[top].copy()
    moves = 8
    for i in range(iterations):
        radius = 0.2 * 0.05 ** (i / max(1, iterations - 1))
        near = enc.neighbours(points, moves, radius, rng)
        vals = acq(near.reshape(-1, enc.width)).reshape(len(points), moves)
        j = np.argmax(vals, axis=1)
        rows = np.arange(len(points))
        improved = vals[rows, j] > best
        points[improved] = near[rows[improved], j[improved]]
        best[improved] = vals[rows[improved], j[improved]]
    return points[int(np.argmax(best))]


# -- data -------------------------------------------------------------------------------
@dataclass
class _Data:
    """The observations of the window as arrays, before the new point is known."""

    t: np.ndarray  # interval start, in steps
    s: np.ndarray  # score at the start, sign-adjusted
    e: np.ndarray  # score at the end, sign-adjusted
    x: np.ndarray  # encoded hyperparameters
    y: np.ndarray  # standardised score change per step
    interval: float
    sign: float
    seen: set[tuple[float, ...]]

    @classmethod
    def build(cls, observations: Sequence[Observation], enc: Encoding, mode: str, window: int) -> "_Data | None":
        sign = 1.0 if mode == "max" else -1.0
        usable = [o for o in observations if _finite(o.score_start) and _finite(o.score_end) and o.step_end > o.step_start]
        usable.sort(key=lambda o: (o.step_end, o.member, o.step_start))
        rows = []
        for o in usable[-window:]:
            try:
                rows.append((o, enc.encode(o.config)))
            except (SpaceError, KeyError, TypeError):
                continue  # a config from outside the space (e.g. an older run): no input for it
        if len(rows) < _MIN_OBSERVATIONS:
            return None
        t = np.array([o.step_start for o, _ in rows], dtype=float)
        s = sign * np.array([o.score_start for o, _ in rows], dtype=float)
        dt = np.array([o.step_end - o.step_start for o, _ in rows], dtype=float)
        end = sign * np.array([o.score_end for o, _ in rows], dtype=float)
        change = (end - s) / dt
        sd = float(change.std())
        y = (change - change.mean()) / (sd if sd > 0 else 1.0)
        x = np.vstack([u for _, u in rows])
        return cls(t, s, end, x, y, float(np.median(dt)), sign, {_key(u) for u in x})

    def inputs(self, t_now: float, s_now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, y, head): GP inputs, targets and the (time, score) columns of the new point."""
        s_new = self.sign * s_now
        # Scaled by the range of every score observed (starts and ends): a
        # donor's latest score is the end of its last interval, so the inputs,
        # and with them the fit, are the same for every decision of a generation.
        lo = min(self.s.min(), self.e.min(), s_new)
        hi = max(self.s.max(), self.e.max(), s_new)
        span = hi - lo if hi > lo else 1.0
        t = (self.t - t_now) / self.interval
        X = np.column_stack([t, (self.s - lo) / span, self.x])
        head = np.array([0.0, (s_new - lo) / span])
        return X, self.y, head


def _new_point(config: Mapping[str, Any], population: PopulationView, member_id: int,
               enc: Encoding) -> tuple[float, float]:
    """(step, score) the exploiting member restarts from: the donor's.

    The explore is given the donor's config, not its id, so the donor is the
    best member holding that config; failing that, the best member.
    """
    sign = 1.0 if population.mode == "max" else -1.0
    others = [m for m in population.members if m.id != member_id and not m.failed and _finite(m.latest)]
    target = _key(enc.encode(config))
    same = [m for m in others if m.has_checkpoint and _encodes_to(m, enc, target)]
    pool = same or others
    if pool:
        donor = max(pool, key=lambda m: (sign * m.latest, -m.id))
        return float(donor.step), float(donor.latest)
    me = population.member(member_id)
    return float(me.step), float(me.latest) if _finite(me.latest) else 0.0


def _pending(population: PopulationView, member_id: int, enc: Encoding, seen: set[tuple[float, ...]]) -> np.ndarray:
    rows = []
    for m in population.members:
        if m.id == member_id or m.failed:
            continue
        try:
            u = enc.encode(m.config)
        except (SpaceError, KeyError, TypeError):
            continue
        if _key(u) not in seen:
            rows.append(u)
    return np.vstack(rows) if rows else np.empty((0, enc.width))


def _encodes_to(m: MemberView, enc: Encoding, key: tuple[float, ...]) -> bool:
    try:
        return _key(enc.encode(m.config)) == key
    except (SpaceError, KeyError, TypeError):
        return False


def _key(u: np.ndarray) -> tuple[float, ...]:
    return tuple(np.round(u, 9).tolist())


def _finite(x: Any) -> bool:
    return x is not None and not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


register_explore("pb2", PB2)
