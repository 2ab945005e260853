"""runs remember when their client was last heard from, so a run whose client died is found

Existing runs get their start time as their last heartbeat: the one sign of life known of
them. A run left running by a client that died is then marked lost by the first sweep; a live
client of such a run brings it back with its next write or heartbeat.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("last_heartbeat", sa.BigInteger(), nullable=True))
    op.execute("UPDATE run SET last_heartbeat = start_time")
    op.create_index("ix_run_status_heartbeat", "run", ["status", "last_heartbeat"], unique=False)


def downgrade() -> None:
    # Older versions know no lost runs: they show them as running again, as they were.
    op.execute("UPDATE run SET status = 'running' WHERE status = 'lost'")
    op.drop_index("ix_run_status_heartbeat", table_name="run")
    with op.batch_alter_table("run") as batch:
        batch.drop_column("last_heartbeat")
