from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from app.models import Role

ROLE_CHOICES = [
    SelectChoice(Role.APPROVER.value, "Approver: decides classroom device requests"),
    SelectChoice(Role.OFFICE.value, "Office: school equipment and the device register"),
    SelectChoice(Role.ADMIN.value, "Admin: people, areas and settings"),
    SelectChoice(Role.GOVERNOR.value, "Governor: reads and exports the audit log, changes nothing"),
]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class InviteForm(FlaskForm):
    display_name = StringField("Name as colleagues know them", validators=[DataRequired("Enter their name."), Length(max=120)])
    email = EmailField("School email address", validators=[DataRequired("Enter their email address."), Length(max=254)])
    roles = MultiCheckboxField("Extra roles (everyone is staff)", choices=ROLE_CHOICES)


class PersonForm(FlaskForm):
    display_name = StringField("Name", validators=[DataRequired("Enter their name."), Length(max=120)])
    roles = MultiCheckboxField("Extra roles (everyone is staff)", choices=ROLE_CHOICES)
