from wtforms import Form, StringField
from wtforms.validators import Length


class PeriodForm(Form):
    """The months a report covers, sent by GET (nothing changes, so no CSRF token); the service checks them."""

    from_month = StringField(
        "From (month)",
        validators=[Length(max=20)],
        description="MM/YYYY, like 09/2026.",
        render_kw={"placeholder": "MM/YYYY", "autocomplete": "off", "spellcheck": "false"},
    )
    to_month = StringField(
        "To (month)",
        validators=[Length(max=20)],
        description="MM/YYYY; this month if left empty.",
        render_kw={"placeholder": "MM/YYYY", "autocomplete": "off", "spellcheck": "false"},
    )
