"""Many processes hammer claim / heartbeat / release: no member is ever leased to two of them at once.

Each process runs a seeded random loop: claim (with a random ``prefer``),
hold for a random moment, confirm with a heartbeat, release; now and then it
abandons a lease without releasing it (a crash), which must expire before the
member is leased again. Every process logs, on its own monotonic clock (one
clock per machine), the span from the return of its claim to the return of a
heartbeat that still found its lease. Two such spans for one member must never
overlap; the lease log in storage must agree.
"""

from __future__ import annotations

import collections
import json
import multiprocessing as mp
import os
import random
import time

import pytest

from poptrain.storage import Storage, worker_name

from scale_helpers import leases_one_after_another

_FORK = mp.get_context("fork")


def _hammer(url: str, exp_id: int, population: int, seed: int, until: float, lease_s: float, out: str) -> None:
    code = 0
    try:
        st = Storage(url)
        name = worker_name()
        rng = random.Random(seed)
        log, claims = [], 0
        while time.time() < until:
            prefer = rng.sample(range(population), rng.randint(0, 2))
            lease = st.claim(exp_id, name, lease_s=lease_s, prefer=prefer)
            got = time.monotonic()
            if lease is None:
                time.sleep(rng.uniform(0, 0.004))
                continue
            assert lease.member.state == "active"
            time.sleep(rng.choice([0.0, 0.0, rng.uniform(0, 0.015)]))
            claims += 1
            if claims == 2 or rng.random() < 0.05:  # every process crashes out of at least one lease
                log.append(dict(member=lease.member_id, token=lease.token, start=got, end=None, how="abandoned"))
                continue
            ok = st.heartbeat(lease, lease_s=lease_s)
            confirmed = time.monotonic()
            log.append(dict(member=lease.member_id, token=lease.token, start=got, end=confirmed if ok else None,
                            how="held" if ok else "lost"))
            st.release(lease)
        with open(out, "w") as fh:
            json.dump(log, fh)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def _hammer_all(url: str, tmp_path, *, processes: int, population: int, seconds: float, lease_s: float, seed: int):
    st = Storage(url)
    exp = st.create_experiment(f"claims-{seed}", {"population": population}, [{"i": i} for i in range(population)])
    until = time.time() + seconds
    outs = [str(tmp_path / f"claims-{i}.json") for i in range(processes)]
    procs = [
        _FORK.Process(target=_hammer, args=(url, exp.id, population, seed * 1000 + i, until, lease_s, outs[i]))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(seconds + 60)
    assert [p.exitcode for p in procs] == [0] * processes
    log = [e for out in outs for e in json.loads(open(out).read())]
    leases = st.leases(exp.id)
    st.close()
    return log, leases


def _check(log, leases) -> dict:
    held = collections.defaultdict(list)
    for e in log:
        if e["how"] == "held":
            held[e["member"]].append((e["start"], e["end"], e["token"]))
    for member, spans in held.items():
        spans.sort()
        for (s1, e1, t1), (s2, e2, t2) in zip(spans, spans[1:]):
            assert e1 < s2, f"member {member} was held by two leases at once: {t1} until {e1}, {t2} from {s2}"
    leases_one_after_another(leases)
    how = {e["token"]: e["how"] for e in log}
    assert set(how) <= {le["token"] for le in leases}
    for le in leases:
        if le["outcome"] == "taken_over":  # only a lease its holder abandoned or overran is ever taken
            assert how.get(le["token"]) in ("abandoned", "lost", None), le
    counts = collections.Counter(e["how"] for e in log)
    assert counts["held"] > 20 and counts["abandoned"] > 0, counts
    assert any(le["outcome"] == "taken_over" for le in leases), "no abandoned lease expired and was taken over"
    return dict(counts)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11])
def test_claims_from_8_processes_on_sqlite_never_overlap(sqlite_url, tmp_path, seed):
    log, leases = _hammer_all(sqlite_url, tmp_path, processes=8, population=5, seconds=3.0, lease_s=0.3, seed=seed)
    _check(log, leases)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("seed", [23])
def test_claims_from_16_processes_on_postgres_never_overlap(postgres_url, tmp_path, seed):
    log, leases = _hammer_all(postgres_url, tmp_path, processes=16, population=10, seconds=3.0, lease_s=0.3, seed=seed)
    _check(log, leases)


@pytest.mark.postgres
def test_a_claim_in_progress_does_not_hold_up_other_workers_writes(postgres_url, monkeypatch):
    """While one worker claims, another must still renew (and commit on) the member it holds.

    The claim is paused between its candidate SELECT and its UPDATE (where it
    draws the new lease token); meanwhile the holder of member 0 renews its lease.
    """
    import threading
    import uuid as real_uuid

    import poptrain.storage.store as store_mod

    st = Storage(postgres_url)
    exp = st.create_experiment("block", {}, [{"i": 0}, {"i": 1}])
    held = st.claim(exp.id, "elsewhere:1:holder", lease_s=30)
    assert held.member_id == 0
    slow = threading.Event()

    class PausingUUID:
        @staticmethod
        def uuid4():
            if threading.current_thread().name == "claimer":
                slow.set()
                time.sleep(1.0)
            return real_uuid.uuid4()

    monkeypatch.setattr(store_mod, "uuid", PausingUUID)
    claimer = threading.Thread(target=lambda: st.claim(exp.id, "elsewhere:2:claimer", lease_s=30), name="claimer")
    claimer.start()
    assert slow.wait(5)
    t0 = time.monotonic()
    assert st.heartbeat(held, lease_s=30)
    waited = time.monotonic() - t0
    claimer.join()
    st.close()
    assert waited < 0.3, f"renewing a held lease waited {waited:.2f} s for another worker's claim"
