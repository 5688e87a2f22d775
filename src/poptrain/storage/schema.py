"""The tables. SQLAlchemy Core: one schema for SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1

metadata = MetaData()

meta = Table(
    "poptrain_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

experiments = Table(
    "poptrain_experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="running"),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
)

# One row per population slot. ``lease_token`` is the compare-and-set key of
# every write a worker makes for the member: a worker whose lease was taken
# over finds its token gone and its writes refused.
members = Table(
    "poptrain_members",
    metadata,
    Column("experiment_id", Integer, ForeignKey("poptrain_experiments.id"), primary_key=True),
    Column("member_id", Integer, primary_key=True),
    Column("state", String(16), nullable=False),  # active | waiting | done | failed
    Column("step", Integer, nullable=False),
    Column("config", JSON, nullable=False),
    Column("segment_id", Integer, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("ckpt_key", String(512)),
    Column("ckpt_sha", String(64)),
    Column("ckpt_size", Integer),
    Column("failures", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("lease_token", String(64)),
    Column("lease_owner", String(256)),
    Column("lease_expires", Float),
    Column("updated_at", Float),
)

segments = Table(
    "poptrain_segments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", Integer, ForeignKey("poptrain_experiments.id"), nullable=False),
    Column("member_id", Integer, nullable=False),
    Column("parent_id", Integer),  # the donor's segment at the exploit
    Column("prev_id", Integer),  # the member's own previous segment
    Column("start_step", Integer, nullable=False),
    Column("end_step", Integer),
    Column("config", JSON, nullable=False),
    Column("donor", Integer),
    Column("donor_step", Integer),
    Column("member_step", Integer),  # the member's own step when it exploited
    Column("old_config", JSON),
    Column("created_at", Float, nullable=False),
    Index("ix_poptrain_segments_exp_member", "experiment_id", "member_id"),
)

history = Table(
    "poptrain_history",
    metadata,
    Column("experiment_id", Integer, ForeignKey("poptrain_experiments.id"), primary_key=True),
    Column("member_id", Integer, primary_key=True),
    Column("segment_id", Integer, primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("metrics", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

checkpoints = Table(
    "poptrain_checkpoints",
    metadata,
    Column("experiment_id", Integer, ForeignKey("poptrain_experiments.id"), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("member_id", Integer, nullable=False),
    Column("segment_id", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("score", Float),
    Column("created_at", Float, nullable=False),
)

observations = Table(
    "poptrain_observations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", Integer, ForeignKey("poptrain_experiments.id"), nullable=False),
    Column("member_id", Integer, nullable=False),
    Column("step_start", Integer, nullable=False),
    Column("step_end", Integer, nullable=False),
    Column("score_start", Float),
    Column("score_end", Float),
    Column("config", JSON, nullable=False),
    Index("ix_poptrain_observations_exp", "experiment_id", "id"),
)

# A row per decided generation (sync mode): its primary key makes the
# decision happen once, whoever tries.
generations = Table(
    "poptrain_generations",
    metadata,
    Column("experiment_id", Integer, ForeignKey("poptrain_experiments.id"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("decisions", JSON, nullable=False),
    Column("decided_at", Float, nullable=False),
    Column("decided_by", String(256)),
)

leases = Table(
    "poptrain_leases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", Integer, ForeignKey("poptrain_experiments.id"), nullable=False),
    Column("member_id", Integer, nullable=False),
    Column("worker", String(256), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("start_step", Integer, nullable=False),
    Column("claimed_at", Float, nullable=False),
    Column("released_at", Float),
    Column("outcome", String(32)),
    Index("ix_poptrain_leases_exp_member", "experiment_id", "member_id"),
)

