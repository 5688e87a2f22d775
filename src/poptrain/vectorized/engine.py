"""PBT over a :class:`Population`: all members in lockstep, decisions per generation."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from poptrain.algorithms.rng import GENERATION, INIT, rng_for
from poptrain.algorithms.types import Exploit, MemberView, Mode, Observation, PopulationView
from poptrain.checkpoints import CheckpointRef, CheckpointStore
from poptrain.errors import ConfigError, SpaceError, TrainableError
from poptrain.space import Space
from poptrain.vectorized.data import Batches
from poptrain.vectorized.optim import SGD, StackedOptimizer
from poptrain.vectorized.population import EvalFn, LossFn, Population
from poptrain.vectorized.recorder import MemoryRecorder, PopulationResult, Recorder

# Keys of rng_for for the engine's own streams, apart from those of the decisions.
WEIGHTS = 101
DATA = 102

TRAIN_LOSS = "train_loss"
CHECKPOINT_FORMAT = "poptrain.vectorized"
CHECKPOINT_VERSION = 1


def _seed(seed: int, *keys: int) -> int:
    return int(rng_for(seed, *keys).integers(2**62))


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Dropout and other random ops draw from ``seed``; the caller's generators are left alone."""
    cuda = device.type == "cuda"
    index = device.index if device.index is not None else (torch.cuda.current_device() if cuda else 0)
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"The '{name}' parameter of train_population must be an int >= {low}. Got {value!r} instead.")


def train_population(
    *,
    model: Callable[[], nn.Module],
    loss: LossFn,
    train_data: Sequence[Tensor] | Iterable[Sequence[Tensor]],
    space: Space | Mapping[str, Any],
    strategy: Any,
    metric: str,
    mode: Mode,
    population: int,
    budget: int,
    optimizer: StackedOptimizer = SGD(),
    batch_size: int | None = None,
    evaluate: EvalFn | None = None,
    eval_data: Sequence[Tensor] | Iterable[Sequence[Tensor]] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    initial_configs: Sequence[Mapping[str, Any]] | None = None,
    scores_kept: int = 10,
    recorders: Sequence[Recorder] = (),
    checkpoints: str | CheckpointStore | None = None,
    name: str = "vectorized",
    resume_from: CheckpointRef | None = None,
) -> PopulationResult:
    """Train a population with PBT as one batched model on one device.

    Every member has the architecture ``model()`` builds (member ``i`` seeded
    from ``seed`` and ``i``), sees the same batches and differs only in its
    weights and its optimizer hyperparameters, which come from its config:
    a config leaf named like one of the optimizer's hyperparameters (``lr``,
    ``momentum``, ``weight_decay``, ``beta1``, ``beta2``, ``eps``) sets it; any
    other leaf raises ConfigError. A step is one pass over ``train_data``,
    followed by ``evaluate`` on ``eval_data``. At each ready point of
    ``strategy`` the whole generation is decided at once
    (``strategy.decide_generation``), as in the process path's synchronous mode,
    and each exploit copies the donor's weights, buffers and optimizer state
    in memory before the explored config is applied.

    Args:
        model: builds one member's ``nn.Module``; called ``population`` times.
        loss: ``loss(outputs, targets) -> scalar`` for one model (e.g.
            ``torch.nn.functional.cross_entropy``); mapped over the members.
        train_data: a tuple ``(inputs..., targets)`` of tensors (cut into
            batches of ``batch_size``, reshuffled each step from ``seed``), or a
            re-iterable of such batches (a list, a ``DataLoader``).
        space: the search space (a Space or the nested dict for one).
        strategy: a :class:`poptrain.algorithms.PBT`.
        metric: the metric that ranks members: a key of ``evaluate``'s result,
            or ``"train_loss"`` (each member's mean training loss of the step,
            always recorded).
        mode: ``"max"`` or ``"min"``.
        population: number of members.
        budget: steps each member trains.
        optimizer: :class:`SGD`, :class:`Adam` or :class:`AdamW`; its fields are
            the defaults for hyperparameters the configs do not set.
        batch_size: batch size for tensor data (``None``: one batch of all).
        evaluate: ``evaluate(outputs, targets)`` for one model, returning a
            scalar tensor (named ``metric``) or a dict of them; averaged over
            the examples of ``eval_data`` (default: ``train_data``).
        eval_data: like ``train_data``; never shuffled.
        seed: seeds the initial configs (as the process path does), the
            initial weights, the data order, dropout and every decision.
        device: ``"cpu"`` or ``"cuda[:i]"``. Everything stays on the device;
            metrics are copied to the host once per ready point.
        initial_configs: start configs (one per member) instead of samples.
        scores_kept: how many recent scores a member carries into decisions.
        recorders: more recorders (e.g. one writing to storage) besides the
            in-memory one whose result is returned.
        checkpoints: a folder, fsspec URL or CheckpointStore; when given, the
            whole population is saved there after each ready point and at the
            end (one checkpoint, filed under member 0; the previous one is
            deleted).
        name: the experiment name the checkpoints are filed under.
        resume_from: a checkpoint written by an earlier run with the same
            arguments (``result.checkpoint``, or the ref a recorder got);
            training continues from its step, and the returned result covers
            the steps trained since.

    Returns:
        The in-memory record of the run: history, exploits, segments, best
        member and its weights, final configs and the latest checkpoint.

    Raises:
        ConfigError: bad arguments, or a config key the engine cannot vary
            per member (``batch_size``, model settings ...), named in the message.
        TrainableError: ``loss`` or ``evaluate`` returned the wrong shape, or
            ``metric`` is not among the recorded metrics.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from poptrain.algorithms import PBT
        >>> from poptrain.space import Float
        >>> from poptrain.vectorized import SGD, train_population
        >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
        >>> result = train_population(
        ...     model=lambda: nn.Linear(4, 3), loss=nn.functional.cross_entropy,
        ...     train_data=(x, y), batch_size=16, space={"lr": Float(1e-3, 1.0, log=True)},
        ...     strategy=PBT(interval=2), metric="acc", mode="max", population=8, budget=6,
        ...     evaluate=lambda out, t: (out.argmax(-1) == t).float().mean(),
        ...     optimizer=SGD(momentum=0.9))
        >>> len(result.history), result.best is not None
        (48, True)
    """
    if not isinstance(space, Space):
        if not isinstance(space, Mapping):
            raise ConfigError(f"The 'space' parameter of train_population must be a Space or a dict. Got {space!r} instead.")
        space = Space(space)
    if mode not in ("max", "min"):
        raise ConfigError(f"The 'mode' parameter of train_population must be 'max' or 'min'. Got {mode!r} instead.")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"The 'metric' parameter of train_population must be a non-empty string. Got {metric!r} instead.")
    if evaluate is None and metric != TRAIN_LOSS:
        raise ConfigError(f"metric {metric!r} needs an evaluate function; without one only {TRAIN_LOSS!r} is recorded")
    _check_int("population", population, 1)
    _check_int("budget", budget, 1)
    _check_int("scores_kept", scores_kept, 1)
    _check_int("seed", seed, 0)
    for attr in ("next_ready", "can_exploit", "decide_generation"):
        if not callable(getattr(strategy, attr, None)):
            raise ConfigError(f"The 'strategy' parameter of train_population must be a poptrain.algorithms.PBT "
                              f"(it has no {attr}()). Got {strategy!r} instead.")
    store = CheckpointStore(checkpoints) if isinstance(checkpoints, str) else checkpoints
    if resume_from is not None and store is None:
        raise ConfigError("resume_from needs checkpoints= (the store the checkpoint lies in)")
    device = torch.device(device)

    if initial_configs is not None:
        if len(initial_configs) != population:
            raise ConfigError(f"{len(initial_configs)} initial_configs for a population of {population}")
        configs = [dict(c) for c in initial_configs]
    else:
        configs = [space.sample(rng_for(seed, INIT, i)) for i in range(population)]
    for i, config in enumerate(configs):
        try:
            space.validate(config)
        except SpaceError as exc:
            raise ConfigError(f"initial config of member {i}: {exc}") from None

    pop = Population(model=model, loss=loss, optimizer=optimizer, configs=configs,
                     seeds=[_seed(seed, WEIGHTS, i) for i in range(population)], device=device)
    train = Batches(train_data, batch_size=batch_size, shuffle=True, device=device, name="train_data")
    evals = None
    if evaluate is not None:
        evals = Batches(train_data if eval_data is None else eval_data, batch_size=batch_size, shuffle=False,
                        device=device, name="eval_data")

    run = _Run(pop=pop, space=space, strategy=strategy, metric=metric, mode=mode, budget=budget, seed=seed,
               scores_kept=scores_kept, store=store, name=name)
    if resume_from is not None:
        assert store is not None
        run.load(store.load(resume_from), resume_from)
    memory = MemoryRecorder(metric=metric, mode=mode)
    run.recorders = [memory, *recorders]
    run.train(train, evals, evaluate)
    best = memory.result.best
    if best is not None:
        memory.result.best_state = {k: v.cpu() for k, v in pop.model.member_state_dict(best.member).items()}
    return memory.result


class _Run:
    """The state of one run besides the population: step, scores, observations."""

    def __init__(self, *, pop: Population, space: Space, strategy: Any, metric: str, mode: Mode, budget: int,
                 seed: int, scores_kept: int, store: CheckpointStore | None, name: str) -> None:
        self.pop, self.space, self.strategy = pop, space, strategy
        self.metric, self.mode, self.budget, self.seed = metric, mode, budget, seed
        self.scores_kept, self.store, self.name = scores_kept, store, name
        self.step = 0
        self.scores: list[list[float]] = [[] for _ in range(pop.n)]
        self.observations: list[dict[str, Any]] = []
        self.observations_kept = int(getattr(getattr(strategy, "explore", None), "observations_needed", 0) or 0)
        self.recorders: list[Recorder] = []
        self.checkpoint: CheckpointRef | None = None
        self.metric_checked = False

    # -- the loop ------------------------------------------------------------
    def train(self, train: Batches, evals: Batches | None, evaluate: EvalFn | None) -> None:
        for r in self.recorders:
            r.start(self.pop.configs, step=self.step)
        while self.step < self.budget:
            target = min(int(self.strategy.next_ready(self.step)), self.budget)
            if target <= self.step:
                raise ConfigError(f"strategy.next_ready({self.step}) returned {target}, not a later step")
            pending: list[dict[str, Tensor]] = []
            for step in range(self.step + 1, target + 1):
                with _seeded(_seed(self.seed, DATA, step, 0), self.pop.device):
                    metrics = {TRAIN_LOSS: self.pop.train_epoch(train.epoch(seed=_seed(self.seed, DATA, step, 1)))}
                    if evals is not None and evaluate is not None:
                        extra = self.pop.evaluate(evals.epoch(seed=0), evaluate, name=self.metric)
                        if TRAIN_LOSS in extra:
                            raise TrainableError(f"evaluate returned a metric named {TRAIN_LOSS!r}, which the "
                                                 f"engine records itself; rename it")
                        metrics.update(extra)
                if not self.metric_checked:
                    if self.metric not in metrics:
                        raise TrainableError(f"the recorded metrics {sorted(metrics)} do not include the "
                                             f"metric {self.metric!r}")
                    self.metric_checked = True
                pending.append(metrics)
            self._report(pending, target)
            if self.step < self.budget and self.strategy.can_exploit(self.step):
                self._decide()
            self._save()
        for r in self.recorders:
            r.finish()

    def _report(self, pending: list[dict[str, Tensor]], target: int) -> None:
        keys = list(pending[0])
        # The only copy from the device to the host: once per interval.
        table = torch.stack([torch.stack([m[k] for k in keys]) for m in pending]).cpu().tolist()  # [S][K][N]
        first = target - len(pending) + 1
        for j, per_key in enumerate(table):
            rows = [{k: float(per_key[ki][i]) for ki, k in enumerate(keys)} for i in range(self.pop.n)]
            for r in self.recorders:
                r.record_steps(first + j, rows)
        mi = keys.index(self.metric)
        for i in range(self.pop.n):
            start = self.scores[i][-1] if self.scores[i] else None
            new = [float(per_key[mi][i]) for per_key in table]
            self.scores[i] = (self.scores[i] + new)[-self.scores_kept:]
            if self.observations_kept:
                self.observations.append(dict(member=i, step_start=self.step, step_end=target, score_start=start,
                                              score_end=new[-1], config=self.pop.configs[i]))
        if self.observations_kept:
            self.observations = self.observations[-self.observations_kept:]
        self.step = target

    def _view(self) -> PopulationView:
        members = [MemberView(id=i, step=self.step, config=self.pop.configs[i], scores=tuple(self.scores[i]))
                   for i in range(self.pop.n)]
        obs = [Observation(o["member"], o["step_start"], o["step_end"], o["score_start"], o["score_end"], o["config"])
               for o in self.observations]
        return PopulationView(members=members, mode=self.mode, observations=obs)

    def _decide(self) -> None:
        decisions = self.strategy.decide_generation(self._view(), space=self.space,
                                                    rng=rng_for(self.seed, GENERATION, self.step))
        sources = list(range(self.pop.n))
        configs = [dict(c) for c in self.pop.configs]
        exploits: list[tuple[int, Exploit]] = []
        for member, decision in sorted(decisions.items()):
            if not isinstance(decision, Exploit):
                continue
            if not 0 <= decision.donor < self.pop.n or decision.donor == member:
                raise ConfigError(f"the strategy told member {member} to exploit member {decision.donor}")
            try:
                self.space.validate(decision.config)
            except SpaceError as exc:
                raise ConfigError(f"the strategy's new config for member {member}: {exc}") from None
            sources[member] = decision.donor
            configs[member] = dict(decision.config)
            exploits.append((member, decision))
        if not exploits:
            return
        old = [dict(c) for c in self.pop.configs]
        self.pop.exploit(sources, configs)
        scores = [list(s) for s in self.scores]
        for member, decision in exploits:
            # The scores belong to the weights: the member now carries the donor's.
            self.scores[member] = list(scores[decision.donor])
            for r in self.recorders:
                r.record_exploit(member, decision.donor, self.step, old[member], configs[member])

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": self.step,
                "seed": self.seed, "scores": self.scores, "observations": self.observations,
                "population": self.pop.state_dict()}

    def _save(self) -> None:
        if self.store is None:
            return
        previous = self.checkpoint
        self.checkpoint = self.store.save(self.state_dict(), experiment=self.name, member=0, step=self.step)
        for r in self.recorders:
            r.record_checkpoint(self.step, self.checkpoint)
        if previous is not None and previous.key != self.checkpoint.key:
            self.store.delete(previous.key)

    def load(self, state: Mapping[str, Any], ref: CheckpointRef) -> None:
        if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
            raise ConfigError(f"checkpoint {ref.key} is not a vectorized population checkpoint "
                              f"(format {state.get('format')!r}, version {state.get('version')!r})")
        if state["seed"] != self.seed:
            raise ConfigError(f"checkpoint {ref.key} was written with seed {state['seed']}, not {self.seed}")
        self.pop.load_state_dict(state["population"])
        self.step = int(state["step"])
        self.scores = [[float(x) for x in s] for s in state["scores"]]
        self.observations = [dict(o) for o in state["observations"]]
        self.checkpoint = ref
        self.metric_checked = False
        for i, config in enumerate(self.pop.configs):
            try:
                self.space.validate(config)
            except SpaceError as exc:
                raise ConfigError(f"checkpoint {ref.key}, member {i}: {exc}") from None
