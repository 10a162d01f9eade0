"""The JSON API (/api/v1): the same services as the pages, answering RFC 9457 problem details."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from app.api import audit, availability_week, bookings, devices, equipment, me, openapi, permissions, push  # noqa: E402,F401  (routes register on bp)
