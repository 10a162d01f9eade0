from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import Length


class SignInRulesForm(FlaskForm):
    passwords_off = BooleanField(
        "Passwords off: everyone signs in with Microsoft or Google",
        description="Passkeys still work. Set-password links and the password form refuse while this is on.",
    )
    create_domain = StringField(
        "Create staff accounts on first sign-in for this email domain",
        description="Like school.sch.uk. Someone signing in with a verified address at this domain who has no account "
        "gets one, with the staff role. Leave blank to let in only people who already have an account.",
        validators=[Length(max=200)],
    )
