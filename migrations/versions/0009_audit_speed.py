"""Audit page speed at a million events: a covering (occurred_at, seq) index for date ranges, LIKE-prefix
action filters on PostgreSQL, and joint statistics for audit_links (kind, ref).

Plain CREATE/DROP INDEX, never batch mode: batch mode would rebuild audit_events and drop its
append-only triggers on SQLite.

Revision ID: 0009_audit_speed
Revises: 0004_push
Create Date: 2026-11-26 00:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
# The lead re-points down_revision to the head of main at merge (0008_governor).
revision = '0009_audit_speed'
down_revision = '0004_push'
branch_labels = None
depends_on = None


def upgrade():
    # A date range becomes a band of seqs read from this index alone (app/services/audit_log.py).
    op.create_index('ix_audit_events_occurred_at_seq', 'audit_events', ['occurred_at', 'seq'], unique=False)
    op.drop_index('ix_audit_events_occurred_at', table_name='audit_events')
    if op.get_bind().dialect.name == "postgresql":
        # "Action starts with" is a LIKE prefix; outside the C collation only a pattern_ops index serves it.
        op.drop_index('ix_audit_events_action_seq', table_name='audit_events')
        op.create_index(
            'ix_audit_events_action_seq', 'audit_events', ['action', 'seq'], unique=False,
            postgresql_ops={'action': 'varchar_pattern_ops'},
        )
        # ref values repeat across kinds ('7' is an area and a person): estimate them together.
        op.execute("CREATE STATISTICS IF NOT EXISTS st_audit_links_kind_ref (ndistinct, mcv) ON kind, ref FROM audit_links")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_audit_links_kind_ref")
        op.drop_index('ix_audit_events_action_seq', table_name='audit_events')
        op.create_index('ix_audit_events_action_seq', 'audit_events', ['action', 'seq'], unique=False)
    op.create_index('ix_audit_events_occurred_at', 'audit_events', ['occurred_at'], unique=False)
    op.drop_index('ix_audit_events_occurred_at_seq', table_name='audit_events')
