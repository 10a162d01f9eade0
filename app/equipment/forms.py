"""Forms for the equipment pages. Validation of meaning lives in the services; these only read input."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from app.form_fields import IdSelectField
from app.models import AssetKind, AssetStatus
from app.services.assets import SETTABLE_STATUSES, AssetDetails

KIND_CHOICES = [SelectChoice(kind.value, kind.label) for kind in AssetKind]
STATUS_CHOICES = [SelectChoice(status.value, status.label) for status in SETTABLE_STATUSES]


class AssetForm(FlaskForm):
    tag = StringField(
        "Asset tag",
        description="Printed on the label, like CAM-001. Letters, digits and dashes.",
        render_kw={"autocapitalize": "characters", "autocomplete": "off", "spellcheck": "false"},
    )
    name = StringField("Name", description="What people call it, like Canon camera (Year 3).")
    kind = SelectField("Kind of equipment", choices=KIND_CHOICES, default=AssetKind.CAMERA.value)
    make = StringField("Make (optional)")
    model = StringField("Model (optional)")
    serial = StringField("Serial number (optional)", render_kw={"autocomplete": "off"})
    imei = StringField(
        "IMEI (work mobiles and tablets with a SIM)",
        description="Dial *#06# on the phone to show it. 15 digits; spaces and dashes are fine.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    recording_capable = BooleanField("It can take photos, video or sound recordings", default=True)
    home_location = StringField("Home location (optional)", description="Where it lives, like Office cupboard or Year 3.")
    status = SelectField("Status", choices=STATUS_CHOICES, default=AssetStatus.AVAILABLE.value)
    notes = TextAreaField("Notes (optional)")

    def details(self, keep_status: bool = False) -> AssetDetails:
        return AssetDetails(
            tag=self.tag.data or "",
            name=self.name.data or "",
            kind=self.kind.data or "",
            make=self.make.data or "",
            model=self.model.data or "",
            serial=self.serial.data or "",
            imei=self.imei.data or "",
            recording_capable=bool(self.recording_capable.data),
            home_location=self.home_location.data or "",
            notes=self.notes.data or "",
            status="" if keep_status else (self.status.data or ""),
        )


class CheckOutForm(FlaskForm):
    borrower_id = IdSelectField(
        "Who is borrowing it?", validate_choice=False, invalid_message="Choose who is borrowing it from the list."
    )
    due_on = DateField("Due back on", validators=[Optional()], description="The school day it should be back by.")
    purpose = StringField("What is it for? (optional)", description="For example: Year 5 trip photos.")
    condition = TextAreaField("Condition going out (optional)", description="Scratches, missing parts, charger included...")
    terms_accepted = BooleanField(
        "The borrower has read and accepted the terms",
        description="Tick only if they read the terms on this screen. Otherwise they are asked to accept them on their own phone.",
    )


class AcceptTermsForm(FlaskForm):
    """The borrower's one-tap "I accept" (CSRF only: the loan is in the address)."""


class CheckInForm(FlaskForm):
    condition = TextAreaField("Condition coming back (optional)", description="Note anything new: damage, missing charger...")
    damaged = BooleanField("It is damaged and needs repair")


class RetireForm(FlaskForm):
    reason = StringField("Why is it retired? (optional)", description="For example: broken beyond repair, sold, lost for good.")


class ImportForm(FlaskForm):
    file = FileField("CSV file of assets")


class StartStockTakeForm(FlaskForm):
    location = SelectField("Where?", validate_choice=False, description="Choose one location, or every location.")


class ScanForm(FlaskForm):
    tag = StringField(
        "Type the tag",
        description="If the camera cannot read a label, type the tag printed under the code.",
        render_kw={"autocapitalize": "characters", "autocomplete": "off", "spellcheck": "false"},
    )
    condition = StringField("Condition (optional)")


class KitCheckInForm(FlaskForm):
    """CSRF only: which members came back, their conditions and damage are read from the member rows."""


class CollectForm(FlaskForm):
    """The office's one tap to hand over a booked item (the terms box is optional, as on a check-out)."""

    terms_accepted = BooleanField(
        "The borrower has read and accepted the terms",
        description="Tick only if they read the terms on this screen. Otherwise they are asked to accept them on their own phone.",
    )
