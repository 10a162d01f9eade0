from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from app.admin.forms import MultiCheckboxField
from app.form_fields import IdSelectField
from app.ids import form_id
from app.models import AreaRule, RequestReason, ReviewOutcome
from app.services.permissions import MAX_EMERGENCY_REASON, MAX_NOTE, Duration

RULE_CHOICES = [SelectChoice(rule.value, f"{rule.label}: {rule.explanation}") for rule in AreaRule]
REASON_CHOICES = [SelectChoice(reason.value, reason.label) for reason in RequestReason]
DURATION_CHOICES = [SelectChoice(duration.value, duration.label) for duration in Duration]
REVIEW_CHOICES = [SelectChoice(outcome.value, outcome.label.capitalize()) for outcome in ReviewOutcome]


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
    # Not the default: ticked only when waiting for a decision would put someone at risk. The service checks
    # the reason (so its messages, not WTForms' generic ones, are shown).
    emergency = BooleanField("It is an emergency: I cannot wait for a decision")
    emergency_reason = TextAreaField(
        "What is happening?",
        render_kw={"maxlength": MAX_EMERGENCY_REASON, "rows": 3},
        description=(
            f"One sentence, at most {MAX_EMERGENCY_REASON} characters, for example: pupil having a seizure, "
            "I am calling 999 and the parents."
        ),
    )


class ReviewForm(FlaskForm):
    """An approver's review of an emergency override; prefixed per request like the decision form."""

    outcome = RadioField("Was the emergency override justified?", choices=REVIEW_CHOICES, validate_choice=False)
    note = TextAreaField(
        "Note",
        render_kw={"maxlength": MAX_NOTE, "rows": 2},
        description="Required when it was not justified: say why and what happens next. The requester sees it.",
    )


class DecisionForm(FlaskForm):
    """One per request in the inbox, with a prefix so every field id on the page is unique."""

    decision = StringField("Decision")
    note = StringField("Note (optional)", validators=[Optional(), Length(max=300)], description="The requester sees it.")
    until = StringField("Shorter end time (optional)", render_kw={"type": "time"})


class StandingPermissionForm(FlaskForm):
    person = IdSelectField(
        "Member of staff",
        invalid_message="Choose a member of staff from the list.",
        validators=[InputRequired("Choose a member of staff.")],
    )
    device = IdSelectField(
        "Device",
        invalid_message="Choose one of their devices, or any device.",
        default=0,
        description="Any of their devices, or one.",
    )
    areas = MultiCheckboxField("Areas (none ticked means every area that allows it)", coerce=form_id)
    starts_on = DateField("First day", validators=[InputRequired("Enter the first day.")])
    ends_on = DateField("Last day", validators=[InputRequired("Enter the last day.")])
    reason = StringField(
        "Reason", validators=[Length(max=200)], description="For example: medical need, carries an insulin pump app."
    )


class CoverForm(FlaskForm):
    delegates = MultiCheckboxField(
        "Delegates", coerce=form_id, description="They are told when every approver is away, and when a request waits too long."
    )
    escalation_minutes = IntegerField(
        "Minutes before a waiting request goes to the delegates",
        validators=[InputRequired("Enter a number of minutes."), NumberRange(1, 120, "Choose between 1 and 120 minutes.")],
    )
