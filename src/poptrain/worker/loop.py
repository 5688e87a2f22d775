"""The worker loop: claim, restore, train to the next ready point, save, report, decide, repeat."""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from poptrain.algorithms.rng import ASYNC, GENERATION, rng_for
from poptrain.algorithms.types import Exploit, MemberView, Observation, PopulationView
from poptrain.checkpoints import CheckpointStore
from poptrain.errors import TrainableError, UnsafeStateError
from poptrain.experiment import Experiment
from poptrain.storage import CheckpointRecord, ExploitOrder, IntervalReport, Lease, MemberRecord, Snapshot, Storage, worker_name
from poptrain.trainable import build, check_metrics
from poptrain.worker.heartbeat import Deleter, Heartbeat

log = logging.getLogger("poptrain.worker")


@dataclass
class WorkerStats:
    intervals: int = 0
    steps: int = 0
    exploits: int = 0
    failures: int = 0
    lost_leases: int = 0
    restores: int = 0
    step_seconds: float = 0.0


@dataclass
class _Cached:
    key: str
    obj: Any


@dataclass
class Worker:
    """Trains members of one experiment until every member is done or failed.

    Any number of workers, in any processes on any hosts, may run at once:
    they share nothing but ``storage`` and ``checkpoints``.
    """

    experiment: Experiment
    experiment_id: int
    storage: Storage
    checkpoints: CheckpointStore
    lease_s: float = 30.0
    poll_s: float = 0.02
    # Members whose live state the worker keeps to skip a checkpoint read;
    # each costs a whole model (and optimizer) of memory, on the GPU too.
    cache_size: int = 2
    name: str = field(default_factory=worker_name)
    trackers: Sequence[Any] = ()
    should_stop: Callable[[], bool] = lambda: False
    keep_all_checkpoints: bool = False
    stats: WorkerStats = field(default_factory=WorkerStats)

    def __post_init__(self) -> None:
        self._cache: OrderedDict[int, _Cached] = OrderedDict()
        self._observations = int(getattr(self.experiment.strategy.explore, "observations_needed", 0) or 0)

    # -- main loop -------------------------------------------------------
    def run(self) -> WorkerStats:
        self._heartbeat = Heartbeat(self.storage, lease_s=self.lease_s)
        self._deleter = Deleter(self.checkpoints)
        try:
            self._loop()
        finally:
            self._heartbeat.close()
            self._deleter.close()
            for t in self.trackers:
                t.close()
        return self.stats

    def _loop(self) -> None:
        exp_id = self.experiment_id
        idle = 0
        lease: Lease | None = None
        while not self.should_stop():
            if lease is None:
                lease = self.storage.claim(exp_id, self.name, lease_s=self.lease_s, prefer=self._cached_ids())
            if lease is None:
                if self.storage.is_finished(exp_id):
                    break
                if self.experiment.strategy.synchronous:
                    step = self.storage.barrier_step(exp_id)
                    if step is not None:
                        self._decide_generation(step)
                        continue
                idle += 1
                time.sleep(min(self.poll_s * (1 + idle // 10), 0.5))
                continue
            idle = 0
            self._heartbeat.watch(lease)
            try:
                lease = self._train(lease)
            finally:
                self._heartbeat.watch(None)
        if lease is not None:  # stopped with a claimed member: hand it back untouched
            self.storage.release(lease, outcome="stopped")

    def _cached_ids(self) -> list[int]:
        return list(self._cache)

    # -- one interval ------------------------------------------------------
    def _train(self, lease: Lease) -> Lease | None:
        """Train ``lease``'s member to its next ready point; returns the next lease, if one was claimed."""
        exp = self.experiment
        m = lease.member
        try:
            obj = self._restore(m)
            target = min(exp.strategy.next_ready(m.step), exp.budget)
            rows: list[tuple[int, dict[str, float]]] = []
            t0 = time.perf_counter()
            for step in range(m.step + 1, target + 1):
                rows.append((step, check_metrics(obj.step(), exp.metric, member=m.member_id, step=step)))
            self.stats.step_seconds += time.perf_counter() - t0
            ref = self.checkpoints.save(obj.state_dict(), experiment=exp.checkpoint_prefix, member=m.member_id, step=target)
        except (TrainableError, UnsafeStateError):
            # Retrying cannot fix a missing metric or a state that cannot be
            # saved without pickle: stop with the message, storage untouched.
            self._cache.pop(m.member_id, None)
            self.storage.release(lease, outcome="error")
            raise
        except Exception:  # noqa: BLE001 - the user's code failed; restart from the last checkpoint
            self._cache.pop(m.member_id, None)
            self.stats.failures += 1
            err = traceback.format_exc()
            state = self.storage.record_failure(lease, err, max_failures=exp.max_failures)
            log.warning("member %s failed after step %s (%s):\n%s", m.member_id, m.step, state, err)
            if state == "failed" and exp.strategy.synchronous:
                step = self.storage.barrier_step(self.experiment_id)
                if step is not None:
                    self._decide_generation(step)
            return None
        if self._heartbeat.lost(lease):
            self._lost(lease, ref.key)
            return None
        return self._report(lease, obj, rows, target, ref)

    def _report(
        self, lease: Lease, obj: Any, rows: list[tuple[int, dict[str, float]]], target: int, ref: Any
    ) -> Lease | None:
        exp = self.experiment
        m = lease.member
        scores = (list(m.scores) + [r[1][exp.metric] for r in rows])[-exp.scores_kept :]
        done = target >= exp.budget
        decide = not done and exp.strategy.can_exploit(target)
        report = IntervalReport(
            step=target, rows=rows, checkpoint=CheckpointRecord(ref.key, ref.sha256, ref.size),
            scores=scores, score=scores[-1] if scores else math.nan, done=done,
            observation=dict(member_id=m.member_id, step_start=m.step, step_end=target,
                             score_start=m.scores[-1] if m.scores else None,
                             score_end=scores[-1] if scores else None, config=m.config)
            if self._observations else None,
        )
        order = None
        if decide and not exp.strategy.synchronous:
            # Decide before committing, from the others' latest scores and this
            # member's new ones, so that report, exploit and release are one
            # transaction (one round trip per ready point).
            order = self._decide_async(m, target, scores)
        then = "arrive" if decide and exp.strategy.synchronous else "release"
        claim_next = None
        if not self.should_stop():
            claim_next = (self.name, self.lease_s, [*self._cached_ids(), m.member_id])
        result = self.storage.finish_interval(
            lease, report, then=then, exploit=order, claim_next=claim_next,
            collect_for_mode=None if self.keep_all_checkpoints else exp.mode,
        )
        if not result.ok:
            self._lost(lease, ref.key)
            return None
        self._deleter.delete(result.garbage)
        self.stats.intervals += 1
        self.stats.steps += len(rows)
        if result.exploited is None:
            self._cache[m.member_id] = _Cached(ref.key, obj)
            self._cache.move_to_end(m.member_id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self.stats.exploits += 1
            self._cache.pop(m.member_id, None)
        for t in self.trackers:
            for step, metrics in rows:
                t.on_step(m.member_id, step, metrics, m.config)
        if result.exploited is not None and order is not None:
            self._notify_exploit(m, target, result.exploited, order.donor)
        if result.barrier_step is not None:
            self._decide_generation(result.barrier_step)
        return result.next_lease

    def _decide_async(self, m: MemberRecord, step: int, scores: list[float]) -> ExploitOrder | None:
        exp = self.experiment
        snap = self.storage.snapshot(self.experiment_id, observations=self._observations)
        view = self._view(snap, own=MemberView(id=m.member_id, step=step, config=m.config, scores=tuple(scores)))
        decision = exp.strategy.decide(m.member_id, view, space=exp.space, rng=rng_for(exp.seed, ASYNC, m.member_id, step))
        if isinstance(decision, Exploit):
            return ExploitOrder(decision.donor, dict(decision.config))
        return None

    def _decide_generation(self, step: int) -> None:
        exp = self.experiment
        snap = self.storage.snapshot(self.experiment_id, observations=self._observations)
        if any(m.state == "active" for m in snap.members):
            return
        waiting = [m for m in snap.members if m.state == "waiting"]
        if not waiting or any(m.step != step for m in waiting):
            return
        view = self._view(Snapshot(waiting, snap.observations))
        decisions = exp.strategy.decide_generation(view, space=exp.space, rng=rng_for(exp.seed, GENERATION, step))
        orders = {k: ExploitOrder(d.donor, dict(d.config)) for k, d in decisions.items() if isinstance(d, Exploit)}
        if self.storage.apply_generation(self.experiment_id, step, orders, decided_by=self.name):
            self.stats.exploits += len(orders)
            configs = {m.member_id: m.config for m in waiting}
            for member_id, order in orders.items():
                self._cache.pop(member_id, None)
                for t in self.trackers:
                    t.on_exploit(dict(member=member_id, step=step, donor=order.donor, donor_step=step,
                                      old_config=configs[member_id], new_config=order.config))

    def _view(self, snap: Snapshot, own: MemberView | None = None) -> PopulationView:
        members = [
            own
            if own is not None and m.member_id == own.id
            else MemberView(
                id=m.member_id, step=m.step, config=m.config, scores=m.scores,
                has_checkpoint=m.checkpoint is not None, failed=m.state == "failed",
            )
            for m in snap.members
        ]
        obs = [
            Observation(o["member"], o["step_start"], o["step_end"], o["score_start"], o["score_end"], o["config"])
            for o in snap.observations
        ]
        return PopulationView(members=members, mode=self.experiment.mode, observations=obs)  # type: ignore[arg-type]

    # -- restore, loss, garbage ------------------------------------------
    def _restore(self, m: MemberRecord) -> Any:
        cached = self._cache.get(m.member_id)
        if cached is not None and m.checkpoint is not None and cached.key == m.checkpoint.key:
            return cached.obj
        self._cache.pop(m.member_id, None)
        cls = self.experiment.trainable
        if m.checkpoint is None:
            return build(cls, m.config)
        self.stats.restores += 1
        state = self.checkpoints.load(_ref(m.checkpoint))
        return build(cls, m.config, state)

    def _lost(self, lease: Lease, key: str) -> None:
        # Another worker owns the member now; what this one trained since the
        # last checkpoint is dropped, never recorded twice.
        # Its checkpoint file stays: deterministic training can give the new
        # owner the very same content-addressed key. Unreferenced files are
        # swept when the experiment finishes.
        self.stats.lost_leases += 1
        self._cache.pop(lease.member_id, None)
        log.warning("lease on member %s was lost; its last interval is discarded", lease.member_id)

    def _notify_exploit(self, old: MemberRecord, step: int, new: MemberRecord, donor: int) -> None:
        if not self.trackers:
            return
        event = dict(member=old.member_id, step=step, donor=donor, donor_step=new.step,
                     old_config=old.config, new_config=new.config)
        for t in self.trackers:
            t.on_exploit(event)


def _ref(ck: CheckpointRecord) -> Any:
    from poptrain.checkpoints import CheckpointRef

    return CheckpointRef(ck.key, ck.sha256, ck.size)
