"""Audit page speed at a million events: a covering (occurred_at, seq) index, so that a date range is read
as a band of seqs from the index alone (app/services/audit_log.py).

Plain CREATE/DROP INDEX, never batch mode: batch mode would rebuild audit_events and drop its
append-only triggers on SQLite.

File renamed from 0009_audit_speed.py (issue 12) so that file names sort in chain order. The revision id
stays '0009_audit_speed': deployed databases hold it in alembic_version, and a changed id would break
their upgrades.

Revision ID: 0009_audit_speed
Revises: 0010_emergency
Create Date: 2026-11-26 00:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009_audit_speed'
down_revision = '0010_emergency'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_audit_events_occurred_at_seq', 'audit_events', ['occurred_at', 'seq'], unique=False)
    op.drop_index('ix_audit_events_occurred_at', table_name='audit_events')


def downgrade():
    op.create_index('ix_audit_events_occurred_at', 'audit_events', ['occurred_at'], unique=False)
    op.drop_index('ix_audit_events_occurred_at_seq', table_name='audit_events')
