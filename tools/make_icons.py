"""Draw Lanyard's PNG icons (192, 512, maskable 512) with the standard library only.

Run once when the design changes: python tools/make_icons.py
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

BLUE = (29, 79, 145)
WHITE = (255, 255, 255)
YELLOW = (255, 204, 0)


def _png(width: int, height: int, pixel) -> bytes:
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x / width, y / height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b"")


def _badge(u: float, v: float, scale: float):
    """A lanyard: a strap in a V down to an ID card, inside the safe zone given by scale."""
    cu, cv = (u - 0.5) / scale + 0.5, (v - 0.5) / scale + 0.5
    if 0.30 <= cu <= 0.70 and 0.48 <= cv <= 0.86:
        if 0.38 <= cu <= 0.62 and 0.56 <= cv <= 0.62:
            return BLUE
        if 0.38 <= cu <= 0.55 and 0.68 <= cv <= 0.72:
            return BLUE
        return WHITE
    for side in (-1, 1):
        # strap from the top corners to the clip above the card
        top_u, bottom_u = 0.5 + side * 0.28, 0.5 + side * 0.04
        if 0.12 <= cv <= 0.48:
            t = (cv - 0.12) / 0.36
            centre = top_u + (bottom_u - top_u) * t
            if abs(cu - centre) <= 0.045:
                return YELLOW
    return BLUE


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "static" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    (out / "icon-192.png").write_bytes(_png(192, 192, lambda u, v: _badge(u, v, 1.0)))
    (out / "icon-512.png").write_bytes(_png(512, 512, lambda u, v: _badge(u, v, 1.0)))
    # Maskable: the artwork sits inside the central 80% safe zone.
    (out / "icon-maskable-512.png").write_bytes(_png(512, 512, lambda u, v: _badge(u, v, 0.72)))


if __name__ == "__main__":
    main()
