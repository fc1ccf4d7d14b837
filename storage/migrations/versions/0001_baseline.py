"""Baseline: the schema as it was when migrations began (calls, flows, compliance, voiceprints).

A database made before migrations (tables created straight from the models) is adopted: only
the tables it lacks are created, then it is at this revision like a new one.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _existing_tables() -> set[str]:
    if op.get_context().as_sql:  # offline SQL for review: assume an empty database
        return set()
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    existing = _existing_tables()
    if "calls" not in existing:
        op.create_table(
            "calls",
            sa.Column("id", sa.String(length=36), nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("sip_call_id", sa.String(length=255), nullable=False),
            sa.Column("direction", sa.String(length=8), nullable=False),
            sa.Column("from_number", sa.String(length=128), nullable=False),
            sa.Column("to_number", sa.String(length=128), nullable=False),
            sa.Column("invite_at", sa.Float(), nullable=False),
            sa.Column("answer_at", sa.Float(), nullable=True),
            sa.Column("end_at", sa.Float(), nullable=True),
            sa.Column("disposition", sa.String(length=32), nullable=False),
            sa.Column("hangup_cause", sa.String(length=64), nullable=False),
            sa.Column("hangup_side", sa.String(length=16), nullable=False),
            sa.Column("sip_status", sa.Integer(), nullable=True),
            sa.Column("digits", sa.String(length=256), nullable=False),
            sa.Column("recording_path", sa.Text(), nullable=True),
            sa.Column("codec", sa.String(length=16), nullable=False),
            sa.Column("flow_id", sa.String(length=128), nullable=True),
            sa.Column("flow_version", sa.Integer(), nullable=True),
            sa.Column("trace", sa.JSON(), nullable=False),
            sa.Column("media", sa.JSON(), nullable=False),
            sa.Column("flow_result", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("calls", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_calls_from_number"), ["from_number"], unique=False)
            batch_op.create_index(batch_op.f("ix_calls_invite_at"), ["invite_at"], unique=False)
            batch_op.create_index(batch_op.f("ix_calls_sip_call_id"), ["sip_call_id"], unique=False)
            batch_op.create_index(batch_op.f("ix_calls_tenant"), ["tenant"], unique=False)
            batch_op.create_index(batch_op.f("ix_calls_to_number"), ["to_number"], unique=False)

    if "compliance_list_entries" not in existing:
        op.create_table(
            "compliance_list_entries",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=8), nullable=False),
            sa.Column("scope", sa.String(length=160), nullable=False),
            sa.Column("target", sa.String(length=20), nullable=False),
            sa.Column("is_prefix", sa.Boolean(), nullable=False),
            sa.Column("reason", sa.String(length=16), nullable=False),
            sa.Column("source", sa.String(length=128), nullable=False),
            sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint(
                "kind",
                "scope",
                "target",
                "is_prefix",
                name=op.f("uq_compliance_list_entries_kind_scope_target_is_prefix"),
            ),
        )
        with op.batch_alter_table("compliance_list_entries", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_compliance_list_entries_target"), ["target"], unique=False
            )

    if "compliance_meta" not in existing:
        op.create_table(
            "compliance_meta",
            sa.Column("key", sa.String(length=32), nullable=False),
            sa.Column("value", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )

    if "compliance_words" not in existing:
        op.create_table(
            "compliance_words",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("term", sa.String(length=256), nullable=False),
            sa.Column("category", sa.String(length=32), nullable=False),
            sa.Column("severity", sa.Integer(), nullable=False),
            sa.Column("action", sa.String(length=8), nullable=False),
            sa.Column("pinyin", sa.Boolean(), nullable=False),
            sa.Column("allow", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("tenant", "term", name=op.f("uq_compliance_words_tenant_term")),
        )

    if "flow_defs" not in existing:
        op.create_table(
            "flow_defs",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("flow_id", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("tenant", "flow_id", name=op.f("uq_flow_defs_tenant_flow_id")),
        )
        with op.batch_alter_table("flow_defs", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_flow_defs_tenant"), ["tenant"], unique=False)

    if "flow_routes" not in existing:
        op.create_table(
            "flow_routes",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("number", sa.String(length=64), nullable=False),
            sa.Column("flow_id", sa.String(length=64), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("tenant", "number", name=op.f("uq_flow_routes_tenant_number")),
        )
        with op.batch_alter_table("flow_routes", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_flow_routes_tenant"), ["tenant"], unique=False)

    if "flow_versions" not in existing:
        op.create_table(
            "flow_versions",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("flow_id", sa.String(length=64), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("content_hash", sa.String(length=64), nullable=False),
            sa.Column("document", sa.Text(), nullable=False),
            sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("published_by", sa.String(length=100), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint(
                "tenant", "flow_id", "version", name=op.f("uq_flow_versions_tenant_flow_id_version")
            ),
        )
        with op.batch_alter_table("flow_versions", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_flow_versions_flow_id"), ["flow_id"], unique=False)
            batch_op.create_index(batch_op.f("ix_flow_versions_tenant"), ["tenant"], unique=False)

    if "speaker_audit" not in existing:
        op.create_table(
            "speaker_audit",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant_id", sa.String(length=64), nullable=False),
            sa.Column("person_id", sa.String(length=128), nullable=False),
            sa.Column("action", sa.String(length=16), nullable=False),
            sa.Column("actor", sa.String(length=128), nullable=False),
            sa.Column("outcome", sa.String(length=32), nullable=False),
            sa.Column("at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("speaker_audit", schema=None) as batch_op:
            batch_op.create_index(
                "ix_speaker_audit_person", ["tenant_id", "person_id"], unique=False
            )

    if "speaker_consents" not in existing:
        op.create_table(
            "speaker_consents",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant_id", sa.String(length=64), nullable=False),
            sa.Column("person_id", sa.String(length=128), nullable=False),
            sa.Column("method", sa.String(length=64), nullable=False),
            sa.Column("text", sa.String(length=1000), nullable=False),
            sa.Column("given_at", sa.Float(), nullable=False),
            sa.Column("withdrawn_at", sa.Float(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("speaker_consents", schema=None) as batch_op:
            batch_op.create_index(
                "ix_speaker_consents_person", ["tenant_id", "person_id"], unique=False
            )

    if "speaker_samples" not in existing:
        op.create_table(
            "speaker_samples",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant_id", sa.String(length=64), nullable=False),
            sa.Column("person_id", sa.String(length=128), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("speaker_samples", schema=None) as batch_op:
            batch_op.create_index(
                "ix_speaker_samples_person", ["tenant_id", "person_id"], unique=False
            )

    if "speaker_voiceprints" not in existing:
        op.create_table(
            "speaker_voiceprints",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("tenant_id", sa.String(length=64), nullable=False),
            sa.Column("person_id", sa.String(length=128), nullable=False),
            sa.Column("backend", sa.String(length=32), nullable=False),
            sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
            sa.Column("n_utterances", sa.Integer(), nullable=False),
            sa.Column("speech_s", sa.Float(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint(
                "tenant_id", "person_id", name=op.f("uq_speaker_voiceprints_tenant_id_person_id")
            ),
        )


def downgrade() -> None:
    op.drop_table("speaker_voiceprints")
    with op.batch_alter_table("speaker_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_speaker_samples_person")

    op.drop_table("speaker_samples")
    with op.batch_alter_table("speaker_consents", schema=None) as batch_op:
        batch_op.drop_index("ix_speaker_consents_person")

    op.drop_table("speaker_consents")
    with op.batch_alter_table("speaker_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_speaker_audit_person")

    op.drop_table("speaker_audit")
    with op.batch_alter_table("flow_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flow_versions_tenant"))
        batch_op.drop_index(batch_op.f("ix_flow_versions_flow_id"))

    op.drop_table("flow_versions")
    with op.batch_alter_table("flow_routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flow_routes_tenant"))
