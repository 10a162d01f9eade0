"""A faster drop-in for WTForms' ``html_params``, installed once at start-up (issue 13).

WTForms builds every attribute of every input, label, select and option through
``Markup.format`` on a ``{k}="{v}"`` template: a ``string.Formatter`` pass with a Python-level escape per field.
On the door page and the approvals inbox that was about a fifth of the CPU of the whole request
(roughly 250 attribute lists per inbox page). This version gives exactly the same markup, byte for
byte: attributes sorted by name, ``class_``/``for_`` and ``data_``/``aria_`` keys cleaned the same way,
``True`` written bare, ``False`` left out, names and values escaped and a double quote in a value that
is already Markup written ``&quot;``. tests/test_html_attributes.py compares it with WTForms' own
function over those cases, so an upgrade of WTForms that changes the rules fails there, not in a page.
"""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup, escape
from wtforms import widgets
from wtforms.widgets import core

wtforms_html_params = core.html_params  # kept for the equivalence test


@lru_cache(maxsize=1024)
def _attribute_name(key: str) -> str:
    """The written name of a keyword argument: ``class_`` -> ``class``, ``aria_describedby`` -> ``aria-describedby``."""
    return str(escape(core.clean_key(key)))


def html_params(**kwargs) -> Markup:
    parts = []
    for key, value in sorted(kwargs.items()):
        if value is True:
            parts.append(_attribute_name(key))
        elif value is not False:
            parts.append(f'{_attribute_name(key)}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(parts))  # noqa: S704  (every name and value above went through escape())


def install() -> None:
    """Point WTForms' widgets and labels at the faster function (idempotent)."""
    core.html_params = html_params
    widgets.html_params = html_params  # the name Label.__call__ looks up
    core.Input.html_params = staticmethod(html_params)
    core.Button.html_params = staticmethod(html_params)
