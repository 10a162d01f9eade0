"""IMEI rules pinned exactly, so a changed message, mask or fallback is caught (mutation testing, issue 19)."""

import pytest

from app.services.imei import FIND_IT, ImeiError, last_four, masked, normalise_imei


@pytest.mark.parametrize("typed", [None, "", " - / . "])
def test_nothing_typed_asks_for_the_imei(typed):
    with pytest.raises(ImeiError) as caught:
        normalise_imei(typed)
    assert str(caught.value) == f"Enter the IMEI. {FIND_IT}"


def test_a_test_imei_is_refused_with_the_reason_in_words():
    with pytest.raises(ImeiError) as caught:
        normalise_imei("001234567890123")
    assert str(caught.value) == (
        "An IMEI starting 00 is a test number, not a real phone's: its first two digits name the body that "
        f"issued it, and 00 is kept for testing. Check the number on the phone itself. {FIND_IT}"
    )


def test_last_four_of_nothing_is_empty():
    assert last_four(None) == ""
    assert last_four("") == ""
    assert last_four("490154203237518") == "7518"


def test_masked_shows_eleven_dots_and_the_last_four_digits():
    assert masked("490154203237518") == "•••••••••••7518"
    assert masked(None) == ""
    assert masked("") == ""
