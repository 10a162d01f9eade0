"""The governor role: a nominated governor reads the audit log and changes nothing.

Revision ID: 0008_governor
Revises: 0004_push
Create Date: 2026-11-25 23:50:00

"""
from alembic import op


revision = '0008_governor'
down_revision = '0004_push'
branch_labels = None
depends_on = None

OLD = "role IN ('staff', 'approver', 'office', 'admin')"
NEW = "role IN ('staff', 'approver', 'office', 'admin', 'governor')"


def _replace_check(condition: str) -> None:
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_roles_known_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_user_roles_known_role'), condition)


def upgrade():
    _replace_check(NEW)


def downgrade():
    op.execute("DELETE FROM user_roles WHERE role = 'governor'")
    _replace_check(OLD)
