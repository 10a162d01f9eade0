from flask_wtf import FlaskForm
from wtforms import BooleanField, FileField, HiddenField, StringField
from wtforms.validators import DataRequired, Length


class StaffFileForm(FlaskForm):
    file = FileField("CSV file of staff")


class ApplyImportForm(FlaskForm):
    text = HiddenField()
    digest = HiddenField()
    deactivate_missing = BooleanField("Deactivate those not in the file (they are signed out everywhere)")


class ScimTokenForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired("Name the token."), Length(max=80)],
        description="Which system uses it, like 'Entra ID provisioning'.",
    )
