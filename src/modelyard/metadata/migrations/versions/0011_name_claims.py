"""one claim per look-alike key of project and model names, so two names that look the same
cannot both be created, even by writers at the same moment

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 15:00:00
"""

import hashlib
import unicodedata
from collections.abc import Sequence
from urllib.parse import unquote

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODEL_PREFIX = "urn:modelyard:model:"


def _digest(name: str) -> str:
    # The look-alike key as the application computed it when this migration was written.
    key = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return hashlib.sha256(key.encode()).hexdigest()


def upgrade() -> None:
    claims = op.create_table(
        "name_claim",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key_digest", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key_digest"),
    )
    conn = op.get_bind()
    rows: dict[tuple[str, str], str] = {}
    for (name,) in conn.execute(sa.text("SELECT name FROM project ORDER BY id")):
        rows.setdefault(("project", _digest(name)), name)
    models = sa.text("SELECT urn FROM entity WHERE type = 'model' ORDER BY urn")
    for (urn,) in conn.execute(models):
        name = unquote(urn.removeprefix(MODEL_PREFIX))
        rows.setdefault(("model", _digest(name)), name)
    # Look-alikes made before this check existed keep working; the first of each is the claim.
    if rows:
        op.bulk_insert(
            claims,
            [{"scope": s, "key_digest": d, "name": n} for (s, d), n in rows.items()],
        )


def downgrade() -> None:
    op.drop_table("name_claim")
