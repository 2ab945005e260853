"""events are removed a retention period after they are settled

Adds ``event.settled_at`` (when an event was delivered or given up) and its index. Events
settled before this migration take their delivery time, or, when given up, the time their next
attempt would have been due (at most an hour after they were given up).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("event", sa.Column("settled_at", sa.BigInteger(), nullable=True))
    op.execute("UPDATE event SET settled_at = delivered_at WHERE status = 'delivered'")
    op.execute("UPDATE event SET settled_at = next_attempt_at WHERE status = 'failed'")
    op.create_index("ix_event_settled_at", "event", ["settled_at"])


def downgrade() -> None:
    op.drop_index("ix_event_settled_at", table_name="event")
    with op.batch_alter_table("event") as batch:
        batch.drop_column("settled_at")
