from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from app.models import DeviceKind
from app.services.devices import DeviceDetails

KIND_CHOICES = [SelectChoice(kind.value, kind.label) for kind in DeviceKind]


class DeviceForm(FlaskForm):
    kind = SelectField("Kind of device", choices=KIND_CHOICES, default=DeviceKind.SMARTPHONE.value)
    make = StringField("Make", description="For example Apple, Samsung, Google.")
    model = StringField("Model", description="For example iPhone 13 or Galaxy A54.")
    description = StringField(
        "Colour or description (optional)",
        validators=[Optional(), Length(max=200)],
        description="Helps the office recognise it, e.g. blue case.",
    )
    imei1 = StringField(
        "IMEI",
        description="Dial *#06# on the phone to show it. 15 digits; spaces and dashes are fine.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    imei2 = StringField(
        "Second IMEI (dual-SIM phones only)",
        description="Dual-SIM phones show two IMEIs on the *#06# screen.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    serial = StringField("Serial number (optional)", validators=[Optional(), Length(max=60)])

    def details(self) -> DeviceDetails:
        return DeviceDetails(
            kind=self.kind.data or "",
            make=self.make.data or "",
            model=self.model.data or "",
            description=self.description.data or "",
            serial=self.serial.data or "",
            imei1=self.imei1.data or "",
            imei2=self.imei2.data or "",
        )


class ReportLostForm(FlaskForm):
    what_happened = RadioField(
        "What happened?",
        choices=[SelectChoice("lost", "I have lost it"), SelectChoice("stolen", "It has been stolen")],
        default="lost",
    )
    crime_reference = StringField(
        "Police crime reference (if you have one)",
        validators=[Optional(), Length(max=60)],
        description="Report a theft to the police on 101 and note the reference here.",
    )
    notes = TextAreaField("Where and when (optional)", validators=[Optional(), Length(max=500)])


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token, for one-button actions."""
