"""The storage conformance suite: runs unchanged on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

from poptrain.errors import StorageError
from poptrain.storage import CheckpointRecord, ExploitOrder, IntervalReport, Storage, mask_url


def _exp(st: Storage, n: int = 4):
    return st.create_experiment("e", {"population": n}, [{"lr": 0.1 * (i + 1)} for i in range(n)])


def _report(step, key, score, done=False, rows=None):
    return IntervalReport(
        step=step, rows=rows if rows is not None else [(step, {"score": score})],
        checkpoint=CheckpointRecord(key, "0" * 64, 10), scores=[score], score=score, done=done,
    )


def test_create_is_idempotent_and_lists(storage_url):
    st = Storage(storage_url)
    a = _exp(st)
    b = st.create_experiment("e", {"population": 99}, [])
    assert a.id == b.id and b.spec == {"population": 4}
    assert [e.name for e in st.list_experiments()] == ["e"]
    assert len(st.members(a.id)) == 4


def test_claim_takes_the_member_furthest_behind_and_never_twice(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 3)
    leases = [st.claim(e.id, f"w{i}", lease_s=60) for i in range(3)]
    assert sorted(l.member_id for l in leases) == [0, 1, 2]
    assert st.claim(e.id, "w9", lease_s=60) is None
    # one member advances; after release, the member still at step 0 comes first
    assert st.commit_interval(leases[1], _report(5, "k1", 1.0), release=True)
    st.release(leases[0])
    again = st.claim(e.id, "w0", lease_s=60)
    assert again.member_id == leases[0].member_id


def test_prefer_breaks_ties_only(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 3)
    assert st.claim(e.id, "w", lease_s=60, prefer=[2]).member_id == 2


def test_expired_lease_is_taken_over_and_old_token_refused(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 1)
    old = st.claim(e.id, "host-a:1:x", lease_s=-1)  # already expired
    new = st.claim(e.id, "host-b:2:y", lease_s=60)
    assert new is not None and new.member_id == old.member_id
    assert not st.heartbeat(old, lease_s=60)
    assert not st.commit_interval(old, _report(5, "old", 0.5))
    assert st.history(e.id) == []
    assert st.commit_interval(new, _report(5, "new", 0.7))
    hist = st.history(e.id)
    assert [(h["step"], h["metrics"]["score"]) for h in hist] == [(5, 0.7)]
    outcomes = {l["token"]: l["outcome"] for l in st.leases(e.id)}
    assert outcomes[old.token] == "taken_over"


def test_commit_records_history_checkpoint_and_scores_atomically(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 2)
    lease = st.claim(e.id, "w", lease_s=60)
    rows = [(1, {"score": 0.1}), (2, {"score": math.nan}), (3, {"score": 0.3, "loss": math.inf})]
    assert st.commit_interval(lease, _report(3, "k", 0.3, rows=rows))
    m = st.members(e.id)[lease.member_id]
    assert m.step == 3 and m.checkpoint.key == "k" and m.scores == (0.3,)
    hist = st.history(e.id)
    assert [h["step"] for h in hist] == [1, 2, 3]
    assert math.isnan(hist[1]["metrics"]["score"]) and hist[2]["metrics"]["loss"] == math.inf
    assert [c["key"] for c in st.checkpoint_records(e.id)] == ["k"]


def test_exploit_copies_donor_checkpoint_step_scores_and_records_lineage(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 2)
    a = st.claim(e.id, "wa", lease_s=60)
    b = st.claim(e.id, "wb", lease_s=60)
    assert st.commit_interval(a, _report(4, "ka", 0.9), release=True)
    res = st.finish_interval(b, _report(4, "kb", 0.1), exploit=ExploitOrder(donor=a.member_id, config={"lr": 0.5}))
    assert res.ok and res.exploited is not None and res.exploited.checkpoint.key == "ka"
    mb = st.members(e.id)[b.member_id]
    assert mb.checkpoint.key == "ka" and mb.config == {"lr": 0.5} and mb.scores == (0.9,) and mb.step == 4
    seg = [s for s in st.segments(e.id) if s["donor"] is not None]
    assert len(seg) == 1 and seg[0]["member"] == b.member_id and seg[0]["donor"] == a.member_id
    assert seg[0]["old_config"] == b.member.config and seg[0]["config"] == {"lr": 0.5}
    # the donor's checkpoint is referenced by both members: never garbage
    # and member b's own old checkpoint is unreferenced and not the best: garbage
    assert st.release_checkpoints(e.id, mode="max") == ["kb"]
    assert [c["key"] for c in st.checkpoint_records(e.id)] == ["ka"]


def test_gc_keeps_referenced_and_best(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 1)
    l1 = st.claim(e.id, "w", lease_s=60)
    assert st.commit_interval(l1, _report(1, "k1", 0.9), release=True)
    l2 = st.claim(e.id, "w", lease_s=60)
    assert st.commit_interval(l2, IntervalReport(step=2, rows=[(2, {"score": 0.5})], checkpoint=CheckpointRecord("k2", "0" * 64, 1), scores=[0.5], score=0.5, done=False), release=True)
    l3 = st.claim(e.id, "w", lease_s=60)
    assert st.commit_interval(l3, IntervalReport(step=3, rows=[(3, {"score": 0.4})], checkpoint=CheckpointRecord("k3", "0" * 64, 1), scores=[0.4], score=0.4, done=False), release=True)
    # k1 is the best (0.9) and kept; k3 is the member's latest and kept; k2 goes
    assert st.release_checkpoints(e.id, mode="max") == ["k2"]
    assert sorted(c["key"] for c in st.checkpoint_records(e.id)) == ["k1", "k3"]


def test_sync_barrier_and_generation_applied_once(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 3)
    leases = [st.claim(e.id, f"w{i}", lease_s=60) for i in range(3)]
    arrived = []
    for l in leases:
        i = l.member_id
        arrived.append(st.finish_interval(l, _report(5, f"k{i}", float(i)), then="arrive").barrier_step)
    assert arrived == [None, None, 5]
    assert st.barrier_step(e.id) == 5
    assert st.claim(e.id, "w", lease_s=60) is None  # everyone waits
    orders = {0: ExploitOrder(2, {"lr": 0.9})}
    assert st.apply_generation(e.id, 5, orders, decided_by="x")
    assert not st.apply_generation(e.id, 5, orders, decided_by="y")
    ms = st.members(e.id)
    assert all(m.state == "active" for m in ms)
    assert ms[0].checkpoint.key == "k2" and ms[0].config == {"lr": 0.9}
    assert st.generation(e.id, 5)["0"]["donor"] == 2


def test_failures_restart_then_fail(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 2)
    for expected in ("active", "active", "failed"):
        lease = st.claim(e.id, "w", lease_s=60, prefer=[0])
        assert lease.member_id == 0
        assert st.record_failure(lease, "boom", max_failures=2) == expected
    m0 = st.members(e.id)[0]
    assert m0.state == "failed" and m0.error == "boom"
    assert not st.is_finished(e.id)
    assert st.reopen_failed(e.id) == 1


def test_unopenable_urls_give_one_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database file" * 100)
    with pytest.raises(StorageError, match="cannot be opened"):
        Storage(f"sqlite:///{junk}")
    assert junk.read_bytes().startswith(b"this is not")
    with pytest.raises(StorageError, match="not a database URL"):
        Storage("not a url")


def test_password_is_masked():
    assert mask_url("postgresql://u:hunter2@h:5/db") == "postgresql://u:***@h:5/db"
    st = Storage.__new__(Storage)
    st.url = "postgresql://u:hunter2@h:5/db"
    assert "hunter2" not in repr(st)


@pytest.mark.postgres
def test_unreachable_postgres_is_one_line_without_password():
    with pytest.raises(StorageError) as info:
        Storage("postgresql://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


def test_commit_generation_then_apply(storage_url):
    st = Storage(storage_url)
    e = _exp(st, 3)
    ck = CheckpointRecord("stack-1", "0" * 64, 99)
    rows = {i: [(1, {"score": float(i)}), (2, {"score": float(i) + 0.5})] for i in range(3)}
    st.commit_generation(e.id, 2, rows, {i: [float(i) + 0.5] for i in range(3)}, ck, done=False)
    assert st.barrier_step(e.id) == 2
    assert st.apply_generation(e.id, 2, {0: ExploitOrder(2, {"lr": 0.7})}, decided_by="vec")
    ms = st.members(e.id)
    assert [m.state for m in ms] == ["active"] * 3 and ms[0].config == {"lr": 0.7} and ms[0].scores == (2.5,)
    assert len(st.history(e.id)) == 6
    st.commit_generation(e.id, 4, {i: [(3, {"score": 1.0}), (4, {"score": 2.0})] for i in range(3)},
                         {i: [2.0] for i in range(3)}, CheckpointRecord("stack-2", "1" * 64, 99), done=True)
    assert st.is_finished(e.id)
    seg0 = [h for h in st.history(e.id) if h["member"] == 0]
    assert [h["step"] for h in seg0] == [1, 2, 3, 4] and len({h["segment"] for h in seg0}) == 2


def test_schema_version_mismatch_is_a_clear_error_and_changes_nothing(storage_url):
    import sqlalchemy as sa

    from poptrain.storage import schema

    st = Storage(storage_url)
    _exp(st, 2)
    with st.engine.begin() as conn:
        conn.execute(sa.update(schema.meta).where(schema.meta.c.key == "schema_version").values(value="999"))
    st.close()
    with pytest.raises(StorageError, match="schema version 999"):
        Storage(storage_url)
    eng = sa.create_engine(storage_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with eng.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.members)).scalar_one() == 2
    eng.dispose()


def test_snapshot_sees_every_change_another_process_commits(storage_url):
    """A reader reuses what it decoded for unchanged members; a change made elsewhere still shows at once."""
    reader, writer = Storage(storage_url), Storage(storage_url)
    e = _exp(reader, 3)
    first = reader.snapshot(e.id).members
    lease = writer.claim(e.id, "w", lease_s=60, prefer=[1])
    assert lease.member_id == 1
    assert writer.commit_interval(lease, _report(4, "k1", float("nan")), release=True)
    second = reader.snapshot(e.id).members
    assert second[0] is first[0] and second[2] is first[2]  # unchanged rows: the records read before
    assert (second[1].step, second[1].checkpoint.key) == (4, "k1") and math.isnan(second[1].scores[-1])
    donor = writer.claim(e.id, "w", lease_s=60, prefer=[0])
    assert writer.commit_interval(donor, _report(4, "k0", 2.0), release=True)
    me = writer.claim(e.id, "w", lease_s=60, prefer=[2])
    res = writer.finish_interval(me, _report(4, "k2", 0.5), exploit=ExploitOrder(0, {"lr": 0.05}))
    assert res.ok and res.exploited is not None
    third = {m.member_id: m for m in reader.snapshot(e.id).members}
    assert third[2].config == {"lr": 0.05} and third[2].checkpoint.key == "k0" and third[2].scores == (2.0,)
    assert third[2].segment_id != first[2].segment_id
    assert third == {m.member_id: m for m in Storage(storage_url).snapshot(e.id).members}  # same as a fresh reader
