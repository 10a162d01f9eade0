from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length, Optional


class PolicyForm(FlaskForm):
    label = StringField("Version", description="How the school names this version, like 2026 or v3 (September 2026).")
    title = StringField("Title", description="Like Social Networking Policy.")
    review_date = StringField(
        "Review date",
        description="DD/MM/YYYY. The admins are reminded before it.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    body = TextAreaField(
        "The policy's text",
        validators=[Optional()],
        description="Paste the text, or upload a PDF below (or both).",
        render_kw={"rows": 12},
    )
    pdf = FileField("Or a PDF of the policy (optional)", description="At most 1.5 MB.")


class AcceptForm(FlaskForm):
    policy_id = HiddenField()


class RemindForm(FlaskForm):
    user_id = HiddenField(validators=[Optional(), Length(max=12)])
