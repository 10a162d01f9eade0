"""The school's logo: a small PNG, JPEG or WebP, checked by its bytes (never by its name or stated type).

SVG is refused: served from our own origin it could carry script. The size cap keeps the request page
within its weight budget on a phone.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from app.models import SchoolLogo, User
from app.services.errors import ValidationFailed
from app.services.settings import define_setting, get_setting, set_setting

LOGO = define_setting("school.logo", "", "School logo")
MAX_BYTES = 64 * 1024


def image_type(data: bytes) -> str | None:
    """The image's real type from its first bytes, or None when it is not a PNG, JPEG or WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def save_logo(session, actor: User, data: bytes) -> SchoolLogo:
    """Check and store a new logo, make it the school's, and forget the ones it replaces (audited)."""
    if not data:
        raise ValidationFailed("Choose a logo to upload.", {"logo": ["Choose an image file to upload."]})
    if len(data) > MAX_BYTES:
        raise ValidationFailed(
            "The logo is too large.", {"logo": [f"The image is over {MAX_BYTES // 1024} KB: use one of at most {MAX_BYTES // 1024} KB (200 x 200 pixels is plenty)."]}
        )
    content_type = image_type(data)
    if content_type is None:
        raise ValidationFailed("The logo must be a PNG, JPEG or WebP image.", {"logo": ["The file is not a PNG, JPEG or WebP image."]})
    digest = hashlib.sha256(data).hexdigest()
    logo = session.get(SchoolLogo, digest)
    if logo is None:
        logo = SchoolLogo(digest=digest, content_type=content_type, data=data, uploaded_by_id=actor.id)
        session.add(logo)
    session.execute(sa.delete(SchoolLogo).where(SchoolLogo.digest != digest))
    session.flush()
    set_setting(session, actor, LOGO.key, digest)
    return logo


def remove_logo(session, actor: User) -> None:
    session.execute(sa.delete(SchoolLogo))
    set_setting(session, actor, LOGO.key, "")


def current_digest(session) -> str:
    return get_setting(session, LOGO.key) or ""


def logo_by_digest(session, digest: str) -> SchoolLogo | None:
    return session.get(SchoolLogo, digest) if len(digest) == 64 else None
