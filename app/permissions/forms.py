from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from app.admin.forms import MultiCheckboxField
from app.models import AreaRule, RequestReason
from app.services.permissions import Duration

RULE_CHOICES = [SelectChoice(rule.value, f"{rule.label}: {rule.explanation}") for rule in AreaRule]
REASON_CHOICES = [SelectChoice(reason.value, reason.label) for reason in RequestReason]
DURATION_CHOICES = [SelectChoice(duration.value, duration.label) for duration in Duration]


class AreaForm(FlaskForm):
    name = StringField("Area name", validators=[Length(max=120)], description="As staff know it, like Year 3 classroom.")
    rule = RadioField("Rule", choices=RULE_CHOICES, default=AreaRule.ASK.value)


class RequestForm(FlaskForm):
    """Device choices come from the device-option providers, set by the view."""

    device = RadioField("Which device?", choices=[], validate_choice=False)
    reason = RadioField("Why do you need it?", choices=REASON_CHOICES, validate_choice=False)
    reason_other = StringField("If other, say why", validators=[Optional(), Length(max=200)])
    duration = RadioField("For how long?", choices=DURATION_CHOICES, default=Duration.END_OF_LESSON.value, validate_choice=False)
    until = StringField("Until (if you choose a time)", render_kw={"type": "time"}, description="School time, today.")


class DecisionForm(FlaskForm):
    """One per request in the inbox, with a prefix so every field id on the page is unique."""

    decision = StringField("Decision")
    note = StringField("Note (optional)", validators=[Optional(), Length(max=300)], description="The requester sees it.")
    until = StringField("Shorter end time (optional)", render_kw={"type": "time"})


class StandingPermissionForm(FlaskForm):
    person = SelectField("Member of staff", coerce=int, validators=[InputRequired("Choose a member of staff.")])
    device = SelectField("Device", coerce=int, default=0, description="Any of their devices, or one.")
    areas = MultiCheckboxField("Areas (none ticked means every area that allows it)", coerce=int)
    starts_on = DateField("First day", validators=[InputRequired("Enter the first day.")])
    ends_on = DateField("Last day", validators=[InputRequired("Enter the last day.")])
    reason = StringField("Reason", validators=[Length(max=200)], description="For example: medical need, carries an insulin pump app.")


class CoverForm(FlaskForm):
    delegates = MultiCheckboxField("Delegates", coerce=int, description="They are told when every approver is away, and when a request waits too long.")
    escalation_minutes = IntegerField(
        "Minutes before a waiting request goes to the delegates",
        validators=[InputRequired("Enter a number of minutes."), NumberRange(1, 120, "Choose between 1 and 120 minutes.")],
    )
