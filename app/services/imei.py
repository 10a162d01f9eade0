"""Read an IMEI the way people type it, and insist on a real 15-digit IMEI (DESIGN.md section 2, 11)."""

from __future__ import annotations

import re

from stdnum import imei as stdnum_imei
from stdnum import luhn
from stdnum.exceptions import ValidationError

FIND_IT = "Dial *#06# on the phone to show its IMEI, or look in Settings > About."
_SEPARATORS = re.compile(r"[\s\-/.]")
# The first two digits of the TAC are the reporting body identifier; 00 marks a test IMEI.
TEST_REPORTING_BODY = "00"


class ImeiError(ValueError):
    pass


def normalise_imei(typed: str) -> str:
    """Return the 15-digit IMEI for what was typed, or raise ImeiError with a message a person can act on.

    Spaces, dashes, slashes and dots are ignored. A 16-digit IMEISV is accepted and its IMEI derived.
    stdnum accepts 14 digits with no check digit; Lanyard does not, because the check digit is what
    catches a mistyped number. A test IMEI (reporting body 00, like 000000000000000) is refused: it is
    no phone's, and registering it would block everyone else who typed the same placeholder.
    """
    compact = _SEPARATORS.sub("", typed or "")
    if not compact:
        raise ImeiError(f"Enter the IMEI. {FIND_IT}")
    if not (compact.isascii() and compact.isdigit()):
        raise ImeiError(f"An IMEI has digits only; this has letters or other characters. {FIND_IT}")
    if len(compact) == 14:
        raise ImeiError(f"That is 14 digits; an IMEI has 15 (the last is a check digit). {FIND_IT}")
    if len(compact) not in (15, 16):
        raise ImeiError(f"That is {len(compact)} digits; an IMEI has 15. {FIND_IT}")
    if compact.startswith(TEST_REPORTING_BODY):
        raise ImeiError(
            "An IMEI starting 00 is a test number, not a real phone's: its first two digits name the body that "
            f"issued it, and 00 is kept for testing. Check the number on the phone itself. {FIND_IT}"
        )
    try:
        stdnum_imei.validate(compact)
    except ValidationError as error:
        if len(compact) == 15:
            raise ImeiError(
                f"That IMEI's last digit does not match the rest, so a digit is probably mistyped. {FIND_IT}"
            ) from error
        raise ImeiError(f"That is not a valid IMEI or IMEISV. {FIND_IT}") from error
    if len(compact) == 16:
        body = compact[:14]
        return body + luhn.calc_check_digit(body)
    return compact


def last_four(imei: str | None) -> str:
    return imei[-4:] if imei else ""


def masked(imei: str | None) -> str:
    """•••• •••• •••• 5186 style: enough to recognise a phone, not enough to identify one."""
    if not imei:
        return ""
    return "•" * 11 + imei[-4:]
