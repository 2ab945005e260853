"""users, groups, project members, API tokens, browser sessions and sign-in throttling; the
change log records how an actor acted (token, proxy) and is searchable by actor

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("change_log") as batch_op:
        batch_op.add_column(sa.Column("via", sa.String(256), nullable=True))
        batch_op.create_index("ix_change_log_actor", ["actor", "id"], unique=False)
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("is_service", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("sessions_valid_after", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account"),
        sa.UniqueConstraint("name", name="uq_account_name"),
    )
    op.create_index("ix_account_email", "account", ["email"], unique=False)
    op.create_table(
        "account_group",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_group"),
        sa.UniqueConstraint("name", name="uq_account_group_name"),
    )
    op.create_table(
        "group_member",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "account_id", name="pk_group_member"),
    )
    op.create_index("ix_group_member_account", "group_member", ["account_id"], unique=False)
    op.create_table(
        "project_member",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "kind", "principal_id", name="pk_project_member"),
    )
    op.create_index(
        "ix_project_member_principal", "project_member", ["kind", "principal_id"], unique=False
    )
    op.create_table(
        "internal_project",
        sa.Column("project_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name="pk_internal_project"),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_token"),
    )
    op.create_index("ix_api_token_account_id", "api_token", ["account_id"], unique=False)
    op.create_table(
        "web_session",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("digest", name="pk_web_session"),
    )
    op.create_index("ix_web_session_account_id", "web_session", ["account_id"], unique=False)
    op.create_table(
        "sign_in_failure",
        sa.Column("key", sa.String(272), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_sign_in_failure"),
    )


def downgrade() -> None:
    for name in (
        "sign_in_failure", "web_session", "api_token", "internal_project", "project_member",
        "group_member", "account_group", "account",
    ):  # fmt: skip
        op.drop_table(name)
    with op.batch_alter_table("change_log") as batch_op:
        batch_op.drop_index("ix_change_log_actor")
        batch_op.drop_column("via")
