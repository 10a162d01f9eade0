"""One tap, one action: one-time form keys with their first result, and the approval that ended
another of the same device (one device, one place).

Revision ID: 0012_form_submissions
Revises: 0011_audit_checkpoint_chain
Create Date: 2026-12-01 05:27:00.600147

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_form_submissions'
down_revision = '0011_audit_checkpoint_chain'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('form_submissions',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('endpoint', sa.String(length=80), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=True),
    sa.Column('location', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_form_submissions_user_id_users')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_form_submissions'))
    )
    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_form_submissions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_form_submissions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('permission_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('superseded_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_permission_requests_superseded_by_id'), ['superseded_by_id'], unique=False)
        batch_op.create_foreign_key('fk_permission_requests_superseded_by', 'permission_requests', ['superseded_by_id'], ['id'])



def downgrade():
    with op.batch_alter_table('permission_requests', schema=None) as batch_op:
        batch_op.drop_constraint('fk_permission_requests_superseded_by', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_permission_requests_superseded_by_id'))
        batch_op.drop_column('superseded_by_id')

    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_form_submissions_user_id'))
        batch_op.drop_index(batch_op.f('ix_form_submissions_created_at'))

    op.drop_table('form_submissions')
