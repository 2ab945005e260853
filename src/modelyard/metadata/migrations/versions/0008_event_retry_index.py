"""an index for counting the events being retried, so /healthz stays cheap with a backlog

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_event_status_attempts", "event", ["status", "attempts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_status_attempts", table_name="event")
