"""model versions, and evaluations of them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 02:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_pk", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_model_version")),
    )
    op.create_index("ix_model_version_run", "model_version", ["run_pk"])
    with op.batch_alter_table("evaluation") as batch:
        batch.add_column(sa.Column("model", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("model_version", sa.Integer(), nullable=True))
    op.create_index("ix_evaluation_model_version", "evaluation", ["model", "model_version"])


def downgrade() -> None:
    op.drop_index("ix_evaluation_model_version", table_name="evaluation")
    with op.batch_alter_table("evaluation") as batch:
        batch.drop_column("model_version")
        batch.drop_column("model")
    op.drop_index("ix_model_version_run", table_name="model_version")
    op.drop_table("model_version")
