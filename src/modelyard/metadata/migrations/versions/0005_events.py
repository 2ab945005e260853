"""the event outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "event",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("urn", sa.String(length=2048), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("aspect", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=256), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
    )
    op.create_index("ix_event_status_id", "event", ["status", "id"])
    op.create_index("ix_event_urn_status_id", "event", ["urn", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_event_urn_status_id", table_name="event")
    op.drop_index("ix_event_status_id", table_name="event")
    op.drop_table("event")
