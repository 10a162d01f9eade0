"""Classroom permission: areas, requests, standing permissions, settings, approver cover.

The school_settings table is a key/value store (JSON values) for every feature's settings; the
permissions feature keeps permissions.escalation_minutes, permissions.delegate_ids and the
school-day timetable there. permission_requests.asset_id has no foreign key yet: the equipment
revision adds it once the assets table exists.

Revision ID: 0002_permissions
Revises: 0001_foundation
Create Date: 2026-11-25 20:57:00.172771

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002_permissions'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('rule', sa.String(length=24), nullable=False),
    sa.Column('poster_token', sa.String(length=64), nullable=False),
    sa.Column('poster_rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("rule IN ('ask', 'school-devices-only', 'closed')", name=op.f('ck_areas_known_rule')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_areas')),
    sa.UniqueConstraint('name', name=op.f('uq_areas_name')),
    sa.UniqueConstraint('poster_token', name=op.f('uq_areas_poster_token'))
    )
    op.create_table('approver_statuses',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('away', sa.Boolean(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_approver_statuses_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_approver_statuses'))
    )
    op.create_table('school_settings',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_school_settings_updated_by_id_users')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_school_settings'))
    )
    op.create_table('standing_permissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('personal_device_id', sa.Integer(), nullable=True),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_standing_permissions_dates_in_order')),
    sa.ForeignKeyConstraint(['ended_by_id'], ['users.id'], name=op.f('fk_standing_permissions_ended_by_id_users')),
    sa.ForeignKeyConstraint(['granted_by_id'], ['users.id'], name=op.f('fk_standing_permissions_granted_by_id_users')),
    sa.ForeignKeyConstraint(['person_id'], ['users.id'], name=op.f('fk_standing_permissions_person_id_users')),
    sa.ForeignKeyConstraint(['personal_device_id'], ['personal_devices.id'], name=op.f('fk_standing_permissions_personal_device_id_personal_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_standing_permissions'))
    )
    with op.batch_alter_table('standing_permissions', schema=None) as batch_op:
        batch_op.create_index('ix_standing_permissions_person_dates', ['person_id', 'ends_on'], unique=False)

    op.create_table('permission_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('personal_device_id', sa.Integer(), nullable=True),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('device_label', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('reason_other', sa.String(length=200), nullable=False),
    sa.Column('wanted_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=300), nullable=False),
    sa.Column('approved_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('standing_permission_id', sa.Integer(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason IN ('medical', 'urgent_call', 'learning_evidence', 'lesson_activity', 'other')", name=op.f('ck_permission_requests_known_reason')),
    sa.CheckConstraint("status IN ('pending', 'approved', 'denied', 'withdrawn', 'expired', 'ended')", name=op.f('ck_permission_requests_known_status')),
    sa.CheckConstraint('personal_device_id IS NOT NULL OR asset_id IS NOT NULL', name=op.f('ck_permission_requests_names_a_device')),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_permission_requests_area_id_areas')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_permission_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['personal_device_id'], ['personal_devices.id'], name=op.f('fk_permission_requests_personal_device_id_personal_devices')),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name=op.f('fk_permission_requests_requester_id_users')),
    sa.ForeignKeyConstraint(['standing_permission_id'], ['standing_permissions.id'], name='fk_permission_requests_standing_permission'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_permission_requests'))
    )
    with op.batch_alter_table('permission_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_permission_requests_area_id'), ['area_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_permission_requests_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_permission_requests_personal_device_id'), ['personal_device_id'], unique=False)
        batch_op.create_index('ix_permission_requests_requester_created', ['requester_id', 'created_at'], unique=False)
        batch_op.create_index('ix_permission_requests_status_created', ['status', 'created_at'], unique=False)

    op.create_table('standing_permission_areas',
    sa.Column('standing_permission_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_standing_permission_areas_area_id_areas')),
    sa.ForeignKeyConstraint(['standing_permission_id'], ['standing_permissions.id'], name='fk_standing_permission_areas_standing_permission'),
    sa.PrimaryKeyConstraint('standing_permission_id', 'area_id', name=op.f('pk_standing_permission_areas'))
    )


def downgrade():
    op.drop_table('standing_permission_areas')
    with op.batch_alter_table('permission_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_permission_requests_status_created')
        batch_op.drop_index('ix_permission_requests_requester_created')
        batch_op.drop_index(batch_op.f('ix_permission_requests_personal_device_id'))
        batch_op.drop_index(batch_op.f('ix_permission_requests_asset_id'))
        batch_op.drop_index(batch_op.f('ix_permission_requests_area_id'))

    op.drop_table('permission_requests')
    with op.batch_alter_table('standing_permissions', schema=None) as batch_op:
        batch_op.drop_index('ix_standing_permissions_person_dates')

    op.drop_table('standing_permissions')
    op.drop_table('school_settings')
    op.drop_table('approver_statuses')
    op.drop_table('areas')
