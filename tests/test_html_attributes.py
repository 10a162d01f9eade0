"""The faster attribute writer gives WTForms' markup byte for byte (app/html_attributes.py, issue 13)."""

from __future__ import annotations

import pytest
from markupsafe import Markup
from wtforms import widgets
from wtforms.widgets import core

from app.html_attributes import html_params, wtforms_html_params

CASES = [
    {},
    {"id": "note", "name": "note", "type": "text", "value": ""},
    {"class_": "input", "aria_describedby": "note-hint note-error", "aria_invalid": "true"},
    {"data_pending_count": 3, "for_": "r12-note", "checked": True, "disabled": False, "readonly": False},
    {"value": 'Mr "Tom" O\'Brien <script>&amp;'},
    {"value": Markup('already "safe" <b>')},
    {"value": None, "maxlength": 300, "min": 0, "step": 1.5},
    {"label": "Year 3 & 4", "selected": True},
    {"weird<key": "x", "z": "last", "a": "first"},
]


@pytest.mark.parametrize("attributes", CASES)
def test_it_writes_what_wtforms_writes(attributes):
    ours, theirs = html_params(**attributes), wtforms_html_params(**attributes)
    assert isinstance(ours, Markup)
    assert str(ours) == str(theirs)


def test_the_widgets_and_labels_use_it(app):
    assert core.html_params is html_params
    assert widgets.html_params is html_params
    assert core.Input.html_params is html_params
    assert core.Button.html_params is html_params
