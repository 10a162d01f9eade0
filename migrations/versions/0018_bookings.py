"""Equipment bookings (issue 17): kits and their members, who may book an asset or a kit, bookings and one
booking item per asset. On PostgreSQL an exclusion constraint (btree_gist) makes two active booking items
of one asset with overlapping slots impossible; SQLite relies on the service's check inside BEGIN IMMEDIATE.

Revision ID: 0018_bookings
Revises: 0017_loan_terms
Create Date: 2026-12-01 14:08:04

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018_bookings'
down_revision = '0017_loan_terms'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('kits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('tag', sa.String(length=40), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('bookable_by', sa.String(length=20), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("bookable_by IS NULL OR bookable_by IN ('everyone', 'approver', 'office', 'admin')", name=op.f('ck_kits_known_bookable_by')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kits')),
    sa.UniqueConstraint('name', name=op.f('uq_kits_name')),
    sa.UniqueConstraint('tag', name=op.f('uq_kits_tag'))
    )
    op.create_table('kit_members',
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('kit_id', sa.Integer(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['school_assets.id'], name=op.f('fk_kit_members_asset_id_school_assets')),
    sa.ForeignKeyConstraint(['kit_id'], ['kits.id'], name=op.f('fk_kit_members_kit_id_kits')),
    sa.PrimaryKeyConstraint('asset_id', name=op.f('pk_kit_members'))
    )
    with op.batch_alter_table('kit_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kit_members_kit_id'), ['kit_id'], unique=False)

    op.create_table('bookings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('booked_for_id', sa.Integer(), nullable=False),
    sa.Column('booked_by_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('kit_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('periods', sa.String(length=40), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('loan_id', sa.Integer(), nullable=True),
    sa.Column('collected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('booked', 'collected', 'released', 'cancelled', 'completed')", name=op.f('ck_bookings_known_status')),
    sa.CheckConstraint('(asset_id IS NULL) <> (kit_id IS NULL)', name=op.f('ck_bookings_asset_or_kit')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_bookings_ends_after_start')),
    sa.ForeignKeyConstraint(['asset_id'], ['school_assets.id'], name=op.f('fk_bookings_asset_id_school_assets')),
    sa.ForeignKeyConstraint(['booked_by_id'], ['users.id'], name=op.f('fk_bookings_booked_by_id_users')),
    sa.ForeignKeyConstraint(['booked_for_id'], ['users.id'], name=op.f('fk_bookings_booked_for_id_users')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_bookings_cancelled_by_id_users')),
    sa.ForeignKeyConstraint(['kit_id'], ['kits.id'], name=op.f('fk_bookings_kit_id_kits')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_bookings_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bookings'))
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_asset_starts', ['asset_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_bookings_for_starts', ['booked_for_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_bookings_kit_starts', ['kit_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_bookings_status_starts', ['status', 'starts_at'], unique=False)

    op.create_table('booking_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_booking_items_ends_after_start')),
    sa.ForeignKeyConstraint(['asset_id'], ['school_assets.id'], name=op.f('fk_booking_items_asset_id_school_assets')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_booking_items_booking_id_bookings')),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_booking_items_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_items'))
    )
    with op.batch_alter_table('booking_items', schema=None) as batch_op:
        batch_op.create_index('ix_booking_items_asset_starts', ['asset_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_booking_items_booking', ['booking_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE booking_items ADD CONSTRAINT ex_booking_items_no_overlap "
            "EXCLUDE USING gist (asset_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (active)"
        )

    with op.batch_alter_table('school_assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bookable_by', sa.String(length=20), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_school_assets_known_bookable_by'), "bookable_by IS NULL OR bookable_by IN ('everyone', 'approver', 'office', 'admin')"
        )


def downgrade():
    with op.batch_alter_table('school_assets', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_school_assets_known_bookable_by'), type_='check')
        batch_op.drop_column('bookable_by')

    with op.batch_alter_table('booking_items', schema=None) as batch_op:
        batch_op.drop_index('ix_booking_items_booking')
        batch_op.drop_index('ix_booking_items_asset_starts')

    op.drop_table('booking_items')
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_bookings_status_starts')
        batch_op.drop_index('ix_bookings_kit_starts')
        batch_op.drop_index('ix_bookings_for_starts')
        batch_op.drop_index('ix_bookings_asset_starts')

    op.drop_table('bookings')
    with op.batch_alter_table('kit_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kit_members_kit_id'))

    op.drop_table('kit_members')
    op.drop_table('kits')
