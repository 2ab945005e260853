"""project keys: the param, tag and metric keys used in each project

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_key",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "kind", "key", name=op.f("pk_project_key")),
    )
    op.execute(
        "INSERT INTO project_key (project_id, kind, key) "
        "SELECT DISTINCT r.project_id, 'param', p.key "
        "FROM run_param p JOIN run r ON r.pk = p.run_pk"
    )
    op.execute(
        "INSERT INTO project_key (project_id, kind, key) "
        "SELECT DISTINCT r.project_id, 'tag', g.key FROM run_tag g JOIN run r ON r.pk = g.run_pk"
    )
    op.execute(
        "INSERT INTO project_key (project_id, kind, key) "
        "SELECT DISTINCT r.project_id, 'metric', k.name FROM latest_metric m "
        "JOIN run r ON r.pk = m.run_pk JOIN metric_key k ON k.id = m.key_id"
    )


def downgrade() -> None:
    op.drop_table("project_key")
