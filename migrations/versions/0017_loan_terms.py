"""Loans keep the borrower's terms for school equipment: the wording shown, when and how it was accepted
(in person at the office, or on the borrower's own phone) and who recorded it.

Revision ID: 0017_loan_terms
Revises: 0016_policy
Create Date: 2026-12-01 00:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0017_loan_terms'
down_revision = '0016_policy'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terms_text', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('terms_accepted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('terms_accepted_via', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('terms_recorded_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_loans_terms_recorded_by_id_users'), 'users', ['terms_recorded_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_loans_terms_recorded_by_id_users'), type_='foreignkey')
        batch_op.drop_column('terms_recorded_by_id')
        batch_op.drop_column('terms_accepted_via')
        batch_op.drop_column('terms_accepted_at')
        batch_op.drop_column('terms_text')
