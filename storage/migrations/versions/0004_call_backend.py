"""Which backend carried a call: ``calls.backend``, ``sip`` (the engine's own SIP/RTP) or
``asterisk`` (an operator's Asterisk over AMI + AudioSocket). Rows written before it existed
were all carried by SIP, so they take ``sip``.

A database made on the Asterisk branch before migrations began may already have the column
(that branch added missing columns itself): then nothing is added.

Revision ID: 0004_call_backend
Revises: 0003_nodes_sms_words
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_call_backend"
down_revision = "0005_campaigns"  # merged after campaigns: 0003 -> 0006 -> 0005 -> 0004
branch_labels = None
depends_on = None


def _has_backend() -> bool:
    """Whether ``calls.backend`` is there already (offline SQL for review: as after 0003)."""
    if op.get_context().as_sql:
        return False
    return "backend" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("calls")}


def upgrade() -> None:
    if _has_backend():
        return
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backend", sa.String(length=16), server_default="sip",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("backend")
