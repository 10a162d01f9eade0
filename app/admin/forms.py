from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.models import Role, StaffType

ROLE_CHOICES = [
    SelectChoice(Role.APPROVER.value, "Approver: decides classroom device requests"),
    SelectChoice(Role.OFFICE.value, "Office: school equipment and the device register"),
    SelectChoice(Role.ADMIN.value, "Admin: people, areas and settings"),
    SelectChoice(Role.GOVERNOR.value, "Governor: reads and exports the audit log, changes nothing"),
]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


STAFF_TYPE_CHOICES = [SelectChoice(t.value, t.label) for t in StaffType]
END_DATE_HINT = "Their last day, for volunteers, supply staff and contractors; the account ends after it. Leave blank if none."


class InviteForm(FlaskForm):
    display_name = StringField("Name as colleagues know them", validators=[DataRequired("Enter their name."), Length(max=120)])
    email = EmailField("School email address", validators=[DataRequired("Enter their email address."), Length(max=254)])
    roles = MultiCheckboxField("Extra roles (everyone is staff)", choices=ROLE_CHOICES)
    staff_type = SelectField("Staff type", choices=STAFF_TYPE_CHOICES, default="employee")
    end_date = DateField("End date (optional)", validators=[Optional()], description=END_DATE_HINT)


class PersonForm(FlaskForm):
    display_name = StringField("Name", validators=[DataRequired("Enter their name."), Length(max=120)])
    roles = MultiCheckboxField("Extra roles (everyone is staff)", choices=ROLE_CHOICES)
    staff_type = SelectField("Staff type", choices=STAFF_TYPE_CHOICES, default="employee")
    end_date = DateField("End date (optional)", validators=[Optional()], description=END_DATE_HINT)
