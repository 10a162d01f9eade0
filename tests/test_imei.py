"""IMEI rules (DESIGN.md section 2 and 11): what people type is normalised; only real IMEIs pass."""

import pytest
from stdnum import luhn

from app.services.imei import ImeiError, last_four, masked, normalise_imei

VALID = "490154203237518"


def test_a_valid_15_digit_imei_is_accepted():
    assert normalise_imei(VALID) == VALID


@pytest.mark.parametrize(
    "typed",
    ["49 015420 323751 8", "49-015420-323751-8", "49/015420/323751/8", " 490154203237518 ", "4901.5420.3237.518"],
)
def test_spaces_dashes_slashes_and_dots_are_ignored(typed):
    assert normalise_imei(typed) == VALID


def test_a_wrong_check_digit_is_refused_with_a_helpful_message():
    with pytest.raises(ImeiError, match="last digit does not match") as caught:
        normalise_imei("490154203237519")
    assert "*#06#" in str(caught.value)


def test_14_digits_are_refused_although_stdnum_accepts_them():
    with pytest.raises(ImeiError, match="14 digits"):
        normalise_imei("49015420323751")


def test_a_16_digit_imeisv_is_accepted_and_its_imei_derived():
    body = "49015420323751"
    assert normalise_imei(body + "86") == body + luhn.calc_check_digit(body)


@pytest.mark.parametrize("typed", ["0049015420323751", "0000000000000000"])
def test_16_digits_that_are_not_a_phones_imeisv_are_refused(typed):
    # An IMEISV has no check digit, so 16 digits fail only on what they say: reporting body 00 is for testing.
    assert len(typed) == 16 and typed.isdigit()
    with pytest.raises(ImeiError, match="test number"):
        normalise_imei(typed)


def test_16_characters_with_letters_are_refused_as_letters_not_as_an_imeisv():
    with pytest.raises(ImeiError, match="digits only"):
        normalise_imei("A" * 16)


@pytest.mark.parametrize("typed", ["49015420323751X", "IMEI490154203237518", "49015420323751８"])  # noqa: RUF001 (a full-width digit on purpose)
def test_letters_and_other_characters_are_refused(typed):
    with pytest.raises(ImeiError, match=r"digits only|not a valid"):
        normalise_imei(typed)


@pytest.mark.parametrize("typed", ["4901542032375", "49015420323751801", "12"])
def test_other_lengths_are_refused_naming_the_count(typed):
    with pytest.raises(ImeiError, match=f"{len(typed)} digits"):
        normalise_imei(typed)


def test_empty_is_refused():
    with pytest.raises(ImeiError, match="Enter the IMEI"):
        normalise_imei("   ")


def test_masking_keeps_only_the_last_four_digits():
    assert masked(VALID).endswith("7518")
    assert "4901" not in masked(VALID)
    assert last_four(VALID) == "7518"
