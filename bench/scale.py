"""Storage cost per ready point at scale: 64 and 256 members, 16 worker processes, PostgreSQL, a trivial step.

For each population size, a fresh database gets one experiment (interval 4,
budget 16: four ready points per member, exploit on) and 16 forked worker
processes train it. Inside every worker a SQLAlchemy ``before_cursor_execute``
listener counts statements, and pool/transaction events count connection
checkouts (each one a ``pre_ping`` where the storage pings), BEGINs and COMMITs/ROLLBACKs; the counts
are summed over workers and divided by the number of committed ready points.
They must not grow with the population.

"Decision wait" is the time from the end of an interval's last ``step()`` to
the return of ``finish_interval`` (checkpoint save, the exploit decision
from a snapshot, and the one commit), measured in the harness: the trainable
notes when its step ends and a wrapper around the worker's
``storage.finish_interval`` notes when it returns. Also reported: the same
without the checkpoint save, and the two storage calls on that path
(``snapshot`` and ``finish_interval``) on their own. Target: p99 < 20 ms.
All worker processes share the machine's cores: with more workers than
cores, the wait includes waiting for a core.

    python bench/scale.py [--storage postgresql://user:pw@host:port/db] [--members 64 256] [--workers 16]

The URL must allow CREATE DATABASE (each run gets its own, dropped after);
by default it is $POPTRAIN_TEST_POSTGRES_URL (``eval "$(bash .ci/postgres.sh)"``).
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

import poptrain as pt
from poptrain.algorithms import PBT, Truncation
from poptrain.executors.job import WorkerJob
from poptrain.space import Float
from poptrain.storage import Storage, mask_url

_last_step_end = [0.0]


class Trivial:
    """A step that does nothing but count."""

    def __init__(self, config: dict) -> None:
        self.x, self.rate = 0.0, config["rate"]

    def apply_config(self, config: dict) -> None:
        self.rate = config["rate"]

    def step(self) -> dict:
        self.x += self.rate
        _last_step_end[0] = time.perf_counter()
        return {"score": self.x}

    def state_dict(self) -> dict:
        return {"x": self.x, "rate": self.rate}

    def load_state_dict(self, state: dict) -> None:
        self.x, self.rate = float(state["x"]), float(state["rate"])


def experiment(name: str, members: int, budget: int, interval: int) -> pt.Experiment:
    return pt.Experiment(
        name=name, trainable=Trivial, space={"rate": Float(0.01, 1.0)}, metric="score",
        strategy=PBT(interval=interval, selection=Truncation(0.25)), population=members, budget=budget, seed=0,
    )


# -- inside each worker process ----------------------------------------------------
def _worker(job: WorkerJob, out: str) -> None:
    code = 0
    try:
        worker = job.make_worker()
        counts = dict(statements=0, finish_statements=0, begins=0, ends=0, checkouts=0)
        in_finish = threading.local()
        engine = worker.storage.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _statement(*_a: Any) -> None:
            counts["statements"] += 1
            if getattr(in_finish, "on", False):
                counts["finish_statements"] += 1

        # An autocommit connection (the storage's reads) sends no BEGIN and no
        # COMMIT/ROLLBACK; a checkout costs a round trip only with pre_ping.
        def _in_transaction(conn: Any) -> bool:
            return conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            counts["begins"] += _in_transaction(conn)

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _end(conn: Any) -> None:
            counts["ends"] += _in_transaction(conn)

        pings = bool(worker.storage._pre_ping)

        @event.listens_for(engine.pool, "checkout")
        def _checkout(*_a: Any) -> None:
            counts["checkouts"] += pings

        waits, saves, ready, snaps, finishes = [], [], [0], [], []
        save, finish, snapshot = worker.checkpoints.save, worker.storage.finish_interval, worker.storage.snapshot

        def timed_snapshot(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return snapshot(*a, **kw)
            finally:
                snaps.append(time.perf_counter() - t0)

        def timed_save(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return save(*a, **kw)
            finally:
                saves.append(time.perf_counter() - t0)

        def timed_finish(*a: Any, **kw: Any) -> Any:
            in_finish.on = True
            t0 = time.perf_counter()
            try:
                result = finish(*a, **kw)
            finally:
                in_finish.on = False
                finishes.append(time.perf_counter() - t0)
            report = a[1] if len(a) > 1 else kw["report"]
            if report.rows:  # an interval that trained nothing (a copied member at its budget) has no step end
                waits.append((time.perf_counter() - _last_step_end[0], saves[-1]))
            ready[0] += bool(result.ok)
            return result

        worker.checkpoints.save = timed_save
        worker.storage.finish_interval = timed_finish
        worker.storage.snapshot = timed_snapshot
        worker.run()
        with open(out, "w") as fh:
            json.dump(dict(counts=counts, waits=waits, saves=saves, ready=ready[0], snaps=snaps, finishes=finishes), fh)
    except BaseException:  # noqa: BLE001 - reported by the exit code
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


# -- one run -----------------------------------------------------------------------
def _fresh_database(admin_url: str) -> tuple[str, Any]:
    admin = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = "poptrain_bench_" + uuid.uuid4().hex[:8]
    eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")

    def drop() -> None:
        with eng.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        eng.dispose()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] * 1000


def _summary(xs: list[float]) -> dict[str, float]:
    return dict(p50=round(_pct(xs, 50), 2), p99=round(_pct(xs, 99), 2)) if xs else {}


def run_once(admin_url: str, members: int, workers: int, budget: int, interval: int) -> dict[str, Any]:
    url, drop = _fresh_database(admin_url)
    tmp = tempfile.mkdtemp(prefix="poptrain-bench-")
    try:
        exp = experiment("scale", members, budget, interval)
        pt.run(exp, storage=url, checkpoints=os.path.join(tmp, "ck"), workers=0)
        st = Storage(url)
        record = st.get_experiment("scale")
        job = WorkerJob(storage_url=url, checkpoints_url=record.spec["checkpoints"], experiment_id=record.id,
                        spec=record.spec, lease_s=30.0, experiment=exp)
        outs = [os.path.join(tmp, f"w{i}.json") for i in range(workers)]
        ctx = mp.get_context("fork")
        t0 = time.perf_counter()
        procs = [ctx.Process(target=_worker, args=(job, o)) for o in outs]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wall = time.perf_counter() - t0
        if any(p.exitcode != 0 for p in procs):
            raise SystemExit(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
        parts = [json.load(open(o)) for o in outs]
        assert st.is_finished(record.id)
        history = st.count_history(record.id)
        exploits = sum(1 for s in st.segments(record.id) if s["donor"] is not None)
        st.close()
    finally:
        drop()
    ready = sum(p["ready"] for p in parts)
    total = {k: sum(p["counts"][k] for p in parts) for k in parts[0]["counts"]}
    waits = [w for p in parts for w, _ in p["waits"]]
    waits_wo_save = [w - s for p in parts for w, s in p["waits"]]
    per = {k: round(v / ready, 2) for k, v in total.items()}
    return dict(
        members=members, workers=workers, ready_points=ready, steps_recorded=history, exploits=exploits,
        wall_s=round(wall, 2),
        statements_per_ready_point=per["statements"],
        finish_interval_statements_per_ready_point=per["finish_statements"],
        transactions_per_ready_point=per["begins"],
        round_trips_per_ready_point=round((total["statements"] + total["begins"] + total["ends"] + total["checkouts"]) / ready, 2),
        decision_wait_ms=dict(p50=round(_pct(waits, 50), 2), p90=round(_pct(waits, 90), 2), p99=round(_pct(waits, 99), 2),
                              max=round(max(waits) * 1000, 2), mean=round(statistics.mean(waits) * 1000, 2)),
        decision_wait_without_save_ms=dict(p50=round(_pct(waits_wo_save, 50), 2), p99=round(_pct(waits_wo_save, 99), 2)),
        snapshot_ms=_summary([x for p in parts for x in p["snaps"]]),
        finish_interval_ms=_summary([x for p in parts for x in p["finishes"]]),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", default=os.environ.get("POPTRAIN_TEST_POSTGRES_URL"))
    ap.add_argument("--members", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--interval", type=int, default=4)
    args = ap.parse_args(argv)
    if not args.storage or not args.storage.startswith(("postgresql://", "postgres://")):
        ap.error("a PostgreSQL --storage URL is needed (or set POPTRAIN_TEST_POSTGRES_URL)")
    runs = [run_once(args.storage, n, args.workers, args.budget, args.interval) for n in args.members]
    print(json.dumps(dict(
        bench="scale", storage=mask_url(args.storage), cpus=os.cpu_count(), python=sys.version.split()[0],
        budget=args.budget, interval=args.interval, target_p99_ms=20, runs=runs,
    ), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
