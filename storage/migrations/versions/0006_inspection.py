"""Post-call inspection: the job queue, results (transcripts, scores), scorecards, reviews.

Chain: 0003 -> 0006_inspection -> 0005_campaigns (branches merged in that order).

Revision ID: 0006_inspection
Revises: 0003_nodes_sms_words
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_inspection'
down_revision = '0003_nodes_sms_words'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inspection_jobs',
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', sa.Float(), nullable=False),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('call_id')
    )
    with op.batch_alter_table('inspection_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_inspection_jobs_state_due', ['state', 'not_before'], unique=False)

    op.create_table('inspection_results',
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('inspected_at', sa.Float(), nullable=False),
    sa.Column('scorecard', sa.String(length=64), nullable=False),
    sa.Column('scorecard_version', sa.Integer(), nullable=False),
    sa.Column('flow_id', sa.String(length=128), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('auto_failed', sa.Boolean(), nullable=False),
    sa.Column('needs_review', sa.Boolean(), nullable=False),
    sa.Column('review_state', sa.String(length=16), nullable=False),
    sa.Column('final_score', sa.Float(), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('transcript', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('call_id')
    )
    with op.batch_alter_table('inspection_results', schema=None) as batch_op:
        batch_op.create_index('ix_inspection_results_tenant_review',
                              ['tenant', 'review_state', 'inspected_at'], unique=False)
        batch_op.create_index('ix_inspection_results_tenant_time',
                              ['tenant', 'inspected_at', 'call_id'], unique=False)

    op.create_table('inspection_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('session', sa.String(length=64), nullable=False),
    sa.Column('reviewer', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('decided_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inspection_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_inspection_reviews_call', ['call_id'], unique=False)
        batch_op.create_index('ix_inspection_reviews_tenant_reviewer',
                              ['tenant', 'reviewer', 'state'], unique=False)

    op.create_table('inspection_scorecards',
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'id')
    )


def downgrade() -> None:
    op.drop_table('inspection_scorecards')
    with op.batch_alter_table('inspection_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_inspection_reviews_tenant_reviewer')
        batch_op.drop_index('ix_inspection_reviews_call')

    op.drop_table('inspection_reviews')
    with op.batch_alter_table('inspection_results', schema=None) as batch_op:
        batch_op.drop_index('ix_inspection_results_tenant_time')
        batch_op.drop_index('ix_inspection_results_tenant_review')

    op.drop_table('inspection_results')
    with op.batch_alter_table('inspection_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_inspection_jobs_state_due')

    op.drop_table('inspection_jobs')
