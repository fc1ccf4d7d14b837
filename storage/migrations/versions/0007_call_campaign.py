"""Which campaign placed a call: ``calls.campaign_id`` (null for inbound calls and test calls),
and the same on ``inspection_results``, so a call is scored on its campaign's scorecard and the
inspection statistics count per campaign. Rows written before have no campaign: null.

Revision ID: 0007_call_campaign
Revises: 0004_call_backend
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_call_campaign"
down_revision = "0004_call_backend"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("inspection_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inspection_results", schema=None) as batch_op:
        batch_op.drop_column("campaign_id")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("campaign_id")
