"""Emergency override on permission requests: the reason, and the review within 24 hours.

File renamed from 0010_emergency.py (issue 12) so that file names sort in chain order. The revision id
stays '0010_emergency': deployed databases hold it in alembic_version, and a changed id would break
their upgrades.

Revision ID: 0010_emergency
Revises: 0008_governor
Create Date: 2026-11-25 23:55:33

"""
from alembic import op
import sqlalchemy as sa


revision = '0010_emergency'
down_revision = '0008_governor'
branch_labels = None
depends_on = None

OUTCOME_CHECK = "review_outcome IS NULL OR review_outcome IN ('justified', 'not_justified')"


def upgrade():
    # Batch mode rebuilds permission_requests on SQLite (never use it on audit_events).
    with op.batch_alter_table('permission_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('emergency', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('emergency_reason', sa.String(length=300), server_default='', nullable=False))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_outcome', sa.String(length=15), nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.String(length=300), server_default='', nullable=False))
        batch_op.add_column(sa.Column('review_escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_permission_requests_reviewed_by_id_users'), 'users', ['reviewed_by_id'], ['id'])
        batch_op.create_check_constraint(batch_op.f('ck_permission_requests_known_review_outcome'), OUTCOME_CHECK)
        batch_op.create_index('ix_permission_requests_emergency_reviewed', ['emergency', 'reviewed_at'], unique=False)


def downgrade():
    with op.batch_alter_table('permission_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_permission_requests_emergency_reviewed')
        batch_op.drop_constraint(batch_op.f('ck_permission_requests_known_review_outcome'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_permission_requests_reviewed_by_id_users'), type_='foreignkey')
        batch_op.drop_column('review_escalated_at')
        batch_op.drop_column('review_note')
        batch_op.drop_column('review_outcome')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by_id')
        batch_op.drop_column('emergency_reason')
        batch_op.drop_column('emergency')
