"""Outbound campaigns: campaigns, their contacts, one row per dial attempt, and per-number
daily caller-ID usage (the pool's daily cap).

A contact is claimed (conditional update) and its attempt row committed before the dial, so the
``(contact_id, attempt_no)`` key makes a double dial impossible even across a restart.

Revision ID: 0005_campaigns
Revises: 0003_nodes_sms_words (0004 is Asterisk's on another branch: the lead re-chains)
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_campaigns'
down_revision = '0006_inspection'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('attempt_no', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('node', sa.String(length=128), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('caller_id', sa.String(length=32), nullable=False),
    sa.Column('trunk', sa.String(length=64), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('disposition', sa.String(length=32), nullable=False),
    sa.Column('cause', sa.String(length=64), nullable=False),
    sa.Column('sip_status', sa.Integer(), nullable=True),
    sa.Column('amd', sa.String(length=16), nullable=False),
    sa.Column('amd_ms', sa.Integer(), nullable=True),
    sa.Column('flow_status', sa.String(length=32), nullable=False),
    sa.Column('last_node', sa.String(length=128), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('contact_id', 'attempt_no',
                        name=op.f('uq_campaign_attempts_contact_id_attempt_no'))
    )
    with op.batch_alter_table('campaign_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_attempts_campaign_id'),
                              ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_attempts_contact_id'),
                              ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_attempts_state'), ['state'], unique=False)

    op.create_table('campaign_callerid_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number', 'day', name=op.f('uq_campaign_callerid_usage_number_day'))
    )
    op.create_table('campaign_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('raw_number', sa.String(length=64), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('variables', sa.JSON(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', sa.Float(), nullable=False),
    sa.Column('last_disposition', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reason_code', sa.String(length=32), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'number',
                        name=op.f('uq_campaign_contacts_campaign_id_number'))
    )
    with op.batch_alter_table('campaign_contacts', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_contacts_due',
                              ['campaign_id', 'state', 'next_at'], unique=False)

    op.create_table('campaigns',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('flow_id', sa.String(length=128), nullable=False),
    sa.Column('flow_version', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('import_report', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaigns_tenant'), ['tenant'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_tenant'))
        batch_op.drop_index(batch_op.f('ix_campaigns_state'))

    op.drop_table('campaigns')
    with op.batch_alter_table('campaign_contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_contacts_due')

    op.drop_table('campaign_contacts')
    op.drop_table('campaign_callerid_usage')
    with op.batch_alter_table('campaign_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_attempts_state'))
        batch_op.drop_index(batch_op.f('ix_campaign_attempts_contact_id'))
        batch_op.drop_index(batch_op.f('ix_campaign_attempts_campaign_id'))

    op.drop_table('campaign_attempts')
