"""``campaign_dialler_lease``: which node dials campaigns when several nodes share one database
without Redis (campaigns/dialler_lease.py). Empty until a dialler starts.

Revision ID: 0008_dialler_lease
Revises: 0007_call_campaign
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_dialler_lease"
down_revision = "0007_call_campaign"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_dialler_lease",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("campaign_dialler_lease")
