"""QR labels: the code holds <BASE_URL>/t/<tag>, built from configuration, never from the request's Host."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import qrcode
from flask import current_app
from qrcode.image.svg import SvgPathImage

LABELS_PER_SHEET = 21  # 3 x 7 labels of 63.5 x 38.1 mm on A4 (the common L7160 sheet)


@dataclass(frozen=True)
class QrSvg:
    """What the template needs to draw the code inline: the viewBox and the path data (autoescaped there)."""

    view_box: str
    path: str
    text: str


def label_url(tag: str) -> str:
    return f"{current_app.config['BASE_URL']}/t/{quote(tag, safe='')}"


def qr_svg(text: str) -> QrSvg:
    """The QR code of ``text`` as one SVG path from the qrcode package's path factory."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2, image_factory=SvgPathImage)
    code.add_data(text)
    code.make(fit=True)
    image = code.make_image()
    image.to_string()  # lays out the path element
    size = code.modules_count + 2 * code.border
    if image.path is None:
        raise RuntimeError("the QR code image has no path element")
    return QrSvg(view_box=f"0 0 {size} {size}", path=image.path.attrib["d"], text=text)


def sheets(items: list, per_sheet: int = LABELS_PER_SHEET) -> list[list]:
    return [items[start : start + per_sheet] for start in range(0, len(items), per_sheet)]
