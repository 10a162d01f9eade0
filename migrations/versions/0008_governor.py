"""The governor role (reads the audit log, changes nothing) and the school's logo.

Revision ID: 0008_governor
Revises: 0004_push
Create Date: 2026-11-25 23:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008_governor'
down_revision = '0004_push'
branch_labels = None
depends_on = None

OLD = "role IN ('staff', 'approver', 'office', 'admin')"
NEW = "role IN ('staff', 'approver', 'office', 'admin', 'governor')"


def _replace_role_check(condition: str) -> None:
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_roles_known_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_user_roles_known_role'), condition)


def upgrade():
    _replace_role_check(NEW)
    op.create_table('school_logos',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_school_logos_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_school_logos'))
    )


def downgrade():
    op.drop_table('school_logos')
    op.execute("DELETE FROM user_roles WHERE role = 'governor'")
    _replace_role_check(OLD)
