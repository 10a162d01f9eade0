from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms.validators import DataRequired, Length


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        "Your school email address", validators=[DataRequired("Enter your school email address."), Length(max=254)]
    )
