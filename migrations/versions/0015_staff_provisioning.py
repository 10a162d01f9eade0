"""Staff provisioning: a staff type, an end date and the identity provider's id on each person; SCIM
bearer tokens; the end-date notices already sent to the office.

The new columns on ``users`` are added with plain ALTER TABLE (SQLite accepts a column CHECK there), so
the table is never rebuilt: rebuilding ``users`` would fight every foreign key that points at it.

Revision ID: 0015_staff_provisioning
Revises: 0014_mail_outbox
Create Date: 2026-11-28 00:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015_staff_provisioning'
down_revision = '0014_mail_outbox'
branch_labels = None
depends_on = None

STAFF_TYPES = "staff_type IN ('employee', 'supply', 'volunteer', 'contractor')"


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE users ADD COLUMN staff_type VARCHAR(20) DEFAULT 'employee' NOT NULL "
            f"CONSTRAINT ck_users_known_staff_type CHECK ({STAFF_TYPES})"
        )
    else:
        op.add_column('users', sa.Column('staff_type', sa.String(length=20), server_default='employee', nullable=False))
        op.create_check_constraint(op.f('ck_users_known_staff_type'), 'users', STAFF_TYPES)
    op.add_column('users', sa.Column('end_date', sa.Date(), nullable=True))
    op.add_column('users', sa.Column('external_id', sa.String(length=255), nullable=True))
    op.add_column('users', sa.Column('deprovisioned_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('scim_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_scim_tokens_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_scim_tokens_token_hash'))
    )
    op.create_table('end_date_notices',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_end_date_notices_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', 'end_date', name=op.f('pk_end_date_notices'))
    )


def downgrade():
    op.drop_table('end_date_notices')
    op.drop_table('scim_tokens')
    op.drop_column('users', 'deprovisioned_at')
    op.drop_column('users', 'external_id')
    op.drop_column('users', 'end_date')
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f('ck_users_known_staff_type'), 'users', type_='check')
    op.drop_column('users', 'staff_type')
