"""The school's logo: a small PNG, JPEG or WebP, checked by its bytes (never by its name or stated type).

SVG is refused: served from our own origin it could carry script. The size cap keeps the request page
within its weight budget on a phone. The pixel cap matters as much: a 48 KB PNG can declare 20000 x
20000 pixels, and every page showing it then takes seconds and gigabytes of memory in the browser to
decode. The dimensions are read from the image's own header (PNG IHDR, JPEG SOF, WebP VP8/VP8L/VP8X).
"""

from __future__ import annotations

import hashlib
import struct

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import SchoolLogo, User
from app.services.errors import ValidationFailed
from app.services.settings import define_setting, get_setting, set_setting

LOGO = define_setting("school.logo", "", "School logo")
MAX_BYTES = 64 * 1024
MAX_SIDE = 1024  # pixels, each way


def image_type(data: bytes) -> str | None:
    """The image's real type from its first bytes, or None when it is not a PNG, JPEG or WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes, content_type: str) -> tuple[int, int] | None:
    """(width, height) in pixels from the image's header, or None when the header cannot be read."""
    try:
        if content_type == "image/png":
            return _png_size(data)
        if content_type == "image/jpeg":
            return _jpeg_size(data)
        if content_type == "image/webp":
            return _webp_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The first chunk is always IHDR: width and height as big-endian 32-bit numbers.
    if data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the marker segments after SOI until a start-of-frame, which holds height then width.
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan began with no frame header
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: a key frame's start code, then 14-bit width and height
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: a signature byte, then width-1 and height-1 in 14 bits each
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:  # extended: canvas width-1 and height-1 in 24 bits each
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _check_pixels(data: bytes, content_type: str) -> None:
    size = image_size(data, content_type)
    if size is None or 0 in size:
        raise ValidationFailed(
            "The logo's size cannot be read.",
            {"logo": ["The image's size in pixels cannot be read: save it again as a PNG, JPEG or WebP."]},
        )
    width, height = size
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValidationFailed(
            "The logo has too many pixels.",
            {
                "logo": [
                    f"The image is {width} x {height} pixels: use one of at most {MAX_SIDE} x {MAX_SIDE} pixels (200 x 200 is plenty)."
                ]
            },
        )


def save_logo(session: Session, actor: User, data: bytes) -> SchoolLogo:
    """Check and store a new logo, make it the school's, and forget the ones it replaces (audited)."""
    if not data:
        raise ValidationFailed("Choose a logo to upload.", {"logo": ["Choose an image file to upload."]})
    if len(data) > MAX_BYTES:
        raise ValidationFailed(
            "The logo is too large.",
            {
                "logo": [
                    f"The image is over {MAX_BYTES // 1024} KB: use one of at most {MAX_BYTES // 1024} KB (200 x 200 pixels is plenty)."
                ]
            },
        )
    content_type = image_type(data)
    if content_type is None:
        raise ValidationFailed(
            "The logo must be a PNG, JPEG or WebP image.", {"logo": ["The file is not a PNG, JPEG or WebP image."]}
        )
    _check_pixels(data, content_type)
    digest = hashlib.sha256(data).hexdigest()
    logo = session.get(SchoolLogo, digest)
    if logo is None:
        logo = SchoolLogo(digest=digest, content_type=content_type, data=data, uploaded_by_id=actor.id)
        session.add(logo)
    session.execute(sa.delete(SchoolLogo).where(SchoolLogo.digest != digest))
    session.flush()
    set_setting(session, actor, LOGO.key, digest)
    return logo


def remove_logo(session: Session, actor: User) -> None:
    session.execute(sa.delete(SchoolLogo))
    set_setting(session, actor, LOGO.key, "")


def current_digest(session: Session) -> str:
    return get_setting(session, LOGO.key) or ""


def logo_by_digest(session: Session, digest: str) -> SchoolLogo | None:
    return session.get(SchoolLogo, digest) if len(digest) == 64 else None
