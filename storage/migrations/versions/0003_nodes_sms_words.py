"""Cluster nodes, post-call SMS, richer word and list entries: ``calls.node`` (which engine
node wrote a record, so a restarted node can mark its own unfinished calls ``node_lost``), the
SMS outbox and templates, per-term pinyin mode and initials, and a note on list entries.

A database made on main before migrations began may already have some of these (its tables were
created from the models): only what is missing is added.

Revision ID: 0003_nodes_sms_words
Revises: 0002_console
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_nodes_sms_words"
down_revision = "0002_console"
branch_labels = None
depends_on = None


def _existing() -> tuple[set[str], dict[str, set[str]]]:
    """Tables and their columns as they are (offline SQL for review: as after 0002)."""
    if op.get_context().as_sql:
        return set(), {"calls": set(), "compliance_list_entries": set(),
                       "compliance_words": set()}
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    columns = {t: {c["name"] for c in inspector.get_columns(t)}
               for t in ("calls", "compliance_list_entries", "compliance_words")}
    return tables, columns


def upgrade() -> None:
    tables, columns = _existing()
    if 'sms_messages' not in tables:
        op.create_table('sms_messages',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=False),
        sa.Column('tenant', sa.String(length=64), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=True),
        sa.Column('campaign', sa.String(length=64), nullable=True),
        sa.Column('template_id', sa.String(length=64), nullable=True),
        sa.Column('rule', sa.String(length=64), nullable=True),
        sa.Column('purpose', sa.String(length=32), nullable=False),
        sa.Column('to_number', sa.String(length=32), nullable=False),
        sa.Column('sender', sa.String(length=32), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('coding', sa.String(length=8), nullable=False),
        sa.Column('parts', sa.Integer(), nullable=False),
        sa.Column('reference', sa.Integer(), nullable=False),
        sa.Column('gateway', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('checked', sa.Integer(), nullable=False),
        sa.Column('due_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('submitted_at', sa.Float(), nullable=True),
        sa.Column('done_at', sa.Float(), nullable=True),
        sa.Column('parts_delivered', sa.Integer(), nullable=False),
        sa.Column('node', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key', name=op.f('uq_sms_messages_idempotency_key'))
        )
        with op.batch_alter_table('sms_messages', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_sms_messages_call_id'), ['call_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_sms_messages_due_at'), ['due_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_sms_messages_status'), ['status'], unique=False)
            batch_op.create_index(batch_op.f('ix_sms_messages_tenant'), ['tenant'], unique=False)
            batch_op.create_index(batch_op.f('ix_sms_messages_to_number'), ['to_number'],
                                  unique=False)

    if 'sms_parts' not in tables:
        op.create_table('sms_parts',
        sa.Column('message_id', sa.String(length=32), nullable=False),
        sa.Column('part', sa.Integer(), nullable=False),
        sa.Column('gateway_message_id', sa.String(length=65), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('stat', sa.String(length=16), nullable=False),
        sa.Column('submitted_at', sa.Float(), nullable=False),
        sa.Column('receipt_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('message_id', 'part')
        )
        with op.batch_alter_table('sms_parts', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_sms_parts_gateway_message_id'),
                                  ['gateway_message_id'], unique=False)

    if 'sms_templates' not in tables:
        op.create_table('sms_templates',
        sa.Column('tenant', sa.String(length=64), nullable=False),
        sa.Column('template_id', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('signature', sa.String(length=32), nullable=False),
        sa.Column('purpose', sa.String(length=32), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'template_id')
        )

    if 'node' not in columns['calls']:
        # rows written before nodes existed belong to no node ('': never marked node_lost)
        with op.batch_alter_table('calls', schema=None) as batch_op:
            batch_op.add_column(sa.Column('node', sa.String(length=128), server_default='',
                                          nullable=False))
            batch_op.create_index(batch_op.f('ix_calls_node'), ['node'], unique=False)

    if 'note' not in columns['compliance_list_entries']:
        with op.batch_alter_table('compliance_list_entries', schema=None) as batch_op:
            batch_op.add_column(sa.Column('note', sa.String(length=200), server_default='',
                                          nullable=False))

    with op.batch_alter_table('compliance_words', schema=None) as batch_op:
        if 'pinyin_mode' not in columns['compliance_words']:
            batch_op.add_column(sa.Column('pinyin_mode', sa.String(length=12), nullable=True))
        if 'initials' not in columns['compliance_words']:
            batch_op.add_column(sa.Column('initials', sa.Boolean(), server_default=sa.false(),
                                          nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('compliance_words', schema=None) as batch_op:
        batch_op.drop_column('initials')
        batch_op.drop_column('pinyin_mode')

    with op.batch_alter_table('compliance_list_entries', schema=None) as batch_op:
        batch_op.drop_column('note')

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calls_node'))
        batch_op.drop_column('node')

    op.drop_table('sms_templates')
    with op.batch_alter_table('sms_parts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_parts_gateway_message_id'))

    op.drop_table('sms_parts')
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_messages_to_number'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_tenant'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_status'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_due_at'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_call_id'))

    op.drop_table('sms_messages')
