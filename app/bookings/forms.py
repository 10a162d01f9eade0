"""Forms for the booking pages. Validation of meaning lives in app/services/bookings.py; these only read input."""

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, SelectMultipleField, StringField, TextAreaField, TimeField
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.form_fields import IdSelectField
from app.models import BookableBy

BOOKABLE_CHOICES = [SelectChoice("", "Nobody (not bookable)")] + [SelectChoice(v.value, v.label) for v in BookableBy]


class PeriodsField(SelectMultipleField):
    """Tick boxes, one per lesson period; an unknown period is the service's to refuse, in words."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form) -> None:
        return None


class BookingForm(FlaskForm):
    thing = SelectField("What do you want to book?", validate_choice=False, description="Equipment and kits you may book.")
    for_user_id = IdSelectField("Who is it for?", validate_choice=False, invalid_message="Choose a person from the list.")
    day = DateField("Day", validators=[Optional()])
    periods = PeriodsField("Lesson periods", description="Tick the periods you need, next to each other.")
    starts = TimeField("From", validators=[Optional()], description="Or give the times instead of periods.")
    ends = TimeField("Until", validators=[Optional()])
    purpose = StringField("What is it for? (optional)", description="For example: Year 3 science photos.")


class BookableForm(FlaskForm):
    bookable_by = SelectField("Who may book it?", choices=BOOKABLE_CHOICES, validate_choice=False)


class KitForm(FlaskForm):
    name = StringField("Name", description="What people call it, like iPad trolley (Year 5).")
    tag = StringField(
        "Tag for its label",
        description="Printed on the kit's label, like KIT-TROLLEY-1. Letters, digits and dashes.",
        render_kw={"autocapitalize": "characters", "autocomplete": "off", "spellcheck": "false"},
    )
    description = TextAreaField("Description (optional)", description="What is in it and where it is kept.")
    bookable_by = SelectField("Who may book it?", choices=BOOKABLE_CHOICES, validate_choice=False)


class MemberForm(FlaskForm):
    tag = StringField(
        "Asset tag to add",
        description="Type or scan the label of the equipment to put in this kit, like IPAD-004.",
        render_kw={"autocapitalize": "characters", "autocomplete": "off", "spellcheck": "false"},
    )


class DayForm(FlaskForm):
    class Meta:
        csrf = False

    day = DateField("Day", validators=[Optional()])
