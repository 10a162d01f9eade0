"""Policy: published versions (text or PDF, review date), each person's acceptance of a version, the
"I do not bring a personal phone or recording device" declaration, and the policy reminder email kind.

Revision ID: 0016_policy
Revises: 0015_staff_provisioning
Create Date: 2026-12-01 00:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0016_policy'
down_revision = '0015_staff_provisioning'
branch_labels = None
depends_on = None

OLD_KINDS = "'invitation', 'password_reset', 'device_lost', 'audit_digest', 'loan_reminder', 'approval_waiting'"


def _mail_kinds(kinds: str) -> None:
    # The policy reminder is not optional (nobody switches it off), so mail_preferences keeps its kinds.
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_mail_outbox_known_mail_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_mail_outbox_known_mail_kind'), f"kind IN ({kinds})")


def upgrade():
    op.create_table('policy_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('pdf_data', sa.LargeBinary(), nullable=True),
    sa.Column('pdf_digest', sa.String(length=64), nullable=True),
    sa.Column('review_date', sa.Date(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('review_reminder_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("body <> '' OR pdf_data IS NOT NULL", name=op.f('ck_policy_versions_has_text_or_pdf')),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_policy_versions_published_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_versions'))
    )
    op.create_table('policy_acceptances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['policy_versions.id'], name=op.f('fk_policy_acceptances_policy_id_policy_versions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_policy_acceptances_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_acceptances')),
    sa.UniqueConstraint('policy_id', 'user_id', name='uq_policy_acceptance_once')
    )
    with op.batch_alter_table('policy_acceptances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_acceptances_user_id'), ['user_id'], unique=False)
    op.create_table('no_device_declarations',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_no_device_declarations_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_no_device_declarations'))
    )
    _mail_kinds(OLD_KINDS + ", 'policy_reminder'")


def downgrade():
    op.execute("DELETE FROM mail_outbox WHERE kind = 'policy_reminder'")
    _mail_kinds(OLD_KINDS)
    op.drop_table('no_device_declarations')
    with op.batch_alter_table('policy_acceptances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_acceptances_user_id'))
    op.drop_table('policy_acceptances')
    op.drop_table('policy_versions')
