"""The backbone's tables. Aspects are the record; the index tables beside them (project, run,
run_param, run_tag, step, artifact, dataset) are secondary indexes kept in the same
transaction so searches stay fast. Series (run metrics, telemetry) are packed bulk tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)

# Limits live in a leaf module the SDK shares; they are named here too for the services.
from modelyard.limits import MAX_ARTIFACT_PATH as MAX_ARTIFACT_PATH
from modelyard.limits import MAX_KEY as MAX_KEY
from modelyard.limits import MAX_NAME as MAX_NAME
from modelyard.limits import MAX_PARAM_VALUE as MAX_PARAM_VALUE
from modelyard.limits import MAX_TAG_VALUE as MAX_TAG_VALUE
from modelyard.limits import MAX_URN as MAX_URN

# Long values are indexed on a prefix (PostgreSQL b-tree rows are bounded in size).
VALUE_INDEX_PREFIX = 200

# SQLite only auto-increments INTEGER PRIMARY KEY columns.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

entity = Table(
    "entity",
    metadata,
    Column("urn", String(MAX_URN), primary_key=True),
    Column("type", String(32), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(MAX_NAME), nullable=False),
)

aspect = Table(
    "aspect",
    metadata,
    Column("urn", String(MAX_URN), nullable=False),
    Column("aspect", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(MAX_NAME), nullable=False),
    Column("created_for", String(MAX_NAME), nullable=True),
    PrimaryKeyConstraint("urn", "aspect", "version"),
)

change_log = Table(
    "change_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("urn", String(MAX_URN), nullable=False, index=True),
    Column("aspect", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous_version", Integer, nullable=True),
    Column("actor", String(MAX_NAME), nullable=False),
    Column("created_at", BigInteger, nullable=False, index=True),
    # How the actor acted, when not signed in in person: "token <name> (#id)", "proxy".
    Column("via", String(MAX_NAME), nullable=True),
    Index("ix_change_log_actor", "actor", "id"),
)

# The outbox: one domain event per committed aspect change, written in the change's own
# transaction; the dispatcher hands each to ``on_event`` hooks and records how that went.
event = Table(
    "event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("urn", String(MAX_URN), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("aspect", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("actor", String(MAX_NAME), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    # pending, delivered, or failed (given up after the most attempts allowed)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("lease_owner", String(MAX_NAME), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    # When it was delivered or given up (null while pending): removed a retention period later.
    Column("settled_at", BigInteger, nullable=True),
    Index("ix_event_status_id", "status", "id"),
    Index("ix_event_urn_status_id", "urn", "status", "id"),
    Index("ix_event_settled_at", "settled_at"),
    # /healthz counts the pending events being retried: a range of this index, so a large
    # backlog of first attempts is never read through.
    Index("ix_event_status_attempts", "status", "attempts"),
)

relationship = Table(
    "relationship",
    metadata,
    Column("source", String(MAX_URN), nullable=False),
    Column("type", String(32), nullable=False),
    Column("destination", String(MAX_URN), nullable=False),
    Column("is_lineage", Boolean, nullable=False),
    Column("owner_urn", String(MAX_URN), nullable=False),
    Column("owner_aspect", String(64), nullable=False),
    PrimaryKeyConstraint("owner_urn", "owner_aspect", "source", "type", "destination"),
    Index("ix_relationship_source", "source", "type"),
    Index("ix_relationship_destination", "destination", "type"),
)

project = Table(
    "project",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_NAME), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(MAX_NAME), nullable=False),
)

# One row per name that a scope's names may not look like: the digest of its look-alike key
# (case-folded NFKC), so two look-alike names cannot both be created, even at the same time.
name_claim = Table(
    "name_claim",
    metadata,
    Column("scope", String(16), nullable=False),
    Column("key_digest", String(64), nullable=False),
    Column("name", String(MAX_NAME), nullable=False),
    PrimaryKeyConstraint("scope", "key_digest"),
)

run = Table(
    "run",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("project_id", Integer, ForeignKey("project.id"), nullable=False),
    Column("name", String(MAX_NAME), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("created_by", String(MAX_NAME), nullable=False),
    # Copies of run_properties / run_state fields, so a page of runs loads from this table.
    Column("source", Text, nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("error", Text, nullable=True),
    # When the run's client was last heard from (creation, a heartbeat, a write), epoch ms;
    # not an aspect: it changes too often to version, and only the status it leads to matters.
    Column("last_heartbeat", BigInteger, nullable=True),
    Index("ix_run_project_start", "project_id", "start_time", "pk"),
    # The sweep that marks silent running runs lost reads a range of this index.
    Index("ix_run_status_heartbeat", "status", "last_heartbeat"),
)

run_param = Table(
    "run_param",
    metadata,
    Column("run_pk", BigInteger, nullable=False),
    Column("key", String(MAX_KEY), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_pk", "key"),
)
Index(
    "ix_run_param_key_value",
    run_param.c.key,
    func.substr(run_param.c.value, 1, VALUE_INDEX_PREFIX),
)

run_tag = Table(
    "run_tag",
    metadata,
    Column("run_pk", BigInteger, nullable=False),
    Column("key", String(MAX_KEY), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_pk", "key"),
)
Index(
    "ix_run_tag_key_value",
    run_tag.c.key,
    func.substr(run_tag.c.value, 1, VALUE_INDEX_PREFIX),
)

# Every param, tag and metric key seen in a project, so a page can offer them as columns
# without scanning the project's runs.
project_key = Table(
    "project_key",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("key", String(MAX_KEY), nullable=False),
    PrimaryKeyConstraint("project_id", "kind", "key"),
)

# Evaluations of runs: the index a run's page lists; results live in the evaluation's
# aspects and files.
evaluation = Table(
    "evaluation",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("run_pk", BigInteger, nullable=False),
    Column("name", String(MAX_NAME), nullable=False),
    Column("dataset", String(MAX_NAME), nullable=True),
    Column("task", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(MAX_NAME), nullable=False),
    Column("model", String(MAX_NAME), nullable=True),
    Column("model_version", Integer, nullable=True),
    Index("ix_evaluation_run", "run_pk", "created_at"),
    Index("ix_evaluation_model_version", "model", "model_version"),
)

# Versions of a model, numbered 1, 2, ... per model, each made by a run.
model_version = Table(
    "model_version",
    metadata,
    Column("model", String(MAX_NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_pk", BigInteger, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(MAX_NAME), nullable=False),
    PrimaryKeyConstraint("model", "version"),
    Index("ix_model_version_run", "run_pk"),
)

# --- series: every numeric series (run metrics, entity telemetry), keyed by owner and key.
# An owner is (owner_kind, owner_id): a run is (SERIES_RUN, run.pk), so run metrics join the
# run table directly; any other entity is (SERIES_ENTITY, series_owner.id).
SERIES_RUN = 1
SERIES_ENTITY = 2

series_key = Table(
    "series_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_KEY), nullable=False, unique=True),
)

# Owners other than runs: an entity's URN given a number once, on its first point.
series_owner = Table(
    "series_owner",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("urn", String(MAX_URN), nullable=False, unique=True),
)

# A series is kept as blocks: each batch stores one row per key holding its steps,
# timestamps and values as little-endian int64/int64/float64 arrays, sorted by step then
# timestamp. A batch of 1,000 points is one row, and a 1,000,000-point history is read back
# as a few hundred rows rather than a million. The step and time bounds let a range read
# skip the blocks outside it.
series_block = Table(
    "series_block",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("owner_kind", SmallInteger, nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("min_step", BigInteger, nullable=False),
    Column("max_step", BigInteger, nullable=False),
    Column("min_time", BigInteger, nullable=False),
    Column("max_time", BigInteger, nullable=False),
    Column("step_data", LargeBinary, nullable=False),
    Column("timestamp_data", LargeBinary, nullable=False),
    Column("value_data", LargeBinary, nullable=False),
    Index("ix_series_block_owner_key", "owner_kind", "owner_id", "key_id", "id"),
)

# The latest point of each (owner, key); NaN is stored as value 0 with is_nan set because
# SQLite turns a NaN REAL into NULL. Searching runs by a metric walks the (key, value) index.
series_latest = Table(
    "series_latest",
    metadata,
    Column("owner_kind", SmallInteger, nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Double, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    PrimaryKeyConstraint("owner_kind", "owner_id", "key_id"),
    Index("ix_series_latest_key_value", "key_id", "owner_kind", "value", "owner_id"),
    sqlite_with_rowid=False,
)

# Idempotency keys of batches applied to entities' series (a run's are in ingest_batch).
series_batch = Table(
    "series_batch",
    metadata,
    Column("owner_id", BigInteger, nullable=False),
    Column("batch_key", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("digest", String(64), nullable=True),  # of what the batch held; None before 0009
    PrimaryKeyConstraint("owner_id", "batch_key"),
)

# Idempotency keys of applied batches: a retried batch with the same key is a no-op.
ingest_batch = Table(
    "ingest_batch",
    metadata,
    Column("run_pk", BigInteger, nullable=False),
    Column("batch_key", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("digest", String(64), nullable=True),  # of what the batch held; None before 0009
    PrimaryKeyConstraint("run_pk", "batch_key"),
)

step = Table(
    "step",
    metadata,
    Column("run_pk", BigInteger, nullable=False),
    Column("name", String(MAX_NAME), nullable=False),
    Column("position", Integer, nullable=False),
    Column("depends_on", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Double, nullable=True),
    Column("message", Text, nullable=True),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("run_pk", "name"),
)

artifact = Table(
    "artifact",
    metadata,
    Column("run_pk", BigInteger, nullable=False),
    Column("path", String(MAX_ARTIFACT_PATH * 4), nullable=False),
    Column("step", String(MAX_NAME), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("media_type", String(MAX_NAME), nullable=False),
    Column("kind", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_pk", "path"),
)

dataset = Table(
    "dataset",
    metadata,
    Column("name", String(MAX_NAME), primary_key=True),
    Column("uri", Text, nullable=True),
    Column("digest", String(MAX_NAME), nullable=True),
    Column("num_rows", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

# --- access: who may do what. The aspects of user, group, token and project entities are
# the audited record; these tables are what each request is checked against, kept in the same
# transaction. Secrets are never aspects (their history would keep them): password and token
# digests live here only.
MAX_USERNAME = 64

account = Table(
    "account",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_USERNAME), nullable=False, unique=True),
    Column("display_name", String(MAX_NAME), nullable=False),
    Column("email", String(320), nullable=True),
    # Argon2id hash; null for accounts that cannot sign in with a password (service accounts,
    # users known from a single sign-on proxy).
    Column("password_hash", Text, nullable=True),
    Column("is_admin", Boolean, nullable=False),
    Column("is_service", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(MAX_NAME), nullable=False),
    # Sessions signed in before this time are void (a password change ends them all).
    Column("sessions_valid_after", BigInteger, nullable=False),
    Index("ix_account_email", "email"),
)

account_group = Table(
    "account_group",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_USERNAME), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

group_member = Table(
    "group_member",
    metadata,
    Column("group_id", Integer, nullable=False),
    Column("account_id", Integer, nullable=False),
    PrimaryKeyConstraint("group_id", "account_id"),
    Index("ix_group_member_account", "account_id"),
)

# A project's members: users or groups (kind "user" or "group", principal_id their id), each
# with a role.
project_member = Table(
    "project_member",
    metadata,
    Column("project_id", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("principal_id", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    PrimaryKeyConstraint("project_id", "kind", "principal_id"),
    Index("ix_project_member_principal", "kind", "principal_id"),
)

# Projects every signed-in user may read.
internal_project = Table(
    "internal_project",
    metadata,
    Column("project_id", Integer, primary_key=True, autoincrement=False),
)

api_token = Table(
    "api_token",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("name", String(MAX_NAME), nullable=False),
    Column("salt", String(32), nullable=False),
    Column("digest", String(64), nullable=False),  # sha256(salt + secret), hex
    Column("read_only", Boolean, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(MAX_NAME), nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

web_session = Table(
    "web_session",
    metadata,
    Column("digest", String(64), primary_key=True),  # sha256 of the cookie's secret, hex
    Column("account_id", Integer, nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("address", String(64), nullable=True),
)

# Failed sign-ins per key ("user:<name>" or "address:<ip>") in the current window.
sign_in_failure = Table(
    "sign_in_failure",
    metadata,
    Column("key", String(MAX_NAME + 16), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_at", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
)
