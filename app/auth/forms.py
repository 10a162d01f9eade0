from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your school email address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class SetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired("Choose a password."), Length(min=8, max=128, message="Use between 8 and 128 characters.")],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    new_password = PasswordField(
        "New password",
        validators=[DataRequired("Choose a new password."), Length(min=8, max=128, message="Use between 8 and 128 characters.")],
    )


class ProfileForm(FlaskForm):
    display_name = StringField("Your name as colleagues know you", validators=[DataRequired("Enter your name."), Length(max=120)])


class TokenForm(FlaskForm):
    name = StringField("What is it for?", validators=[DataRequired("Name the token, like 'MIS sync'."), Length(max=80)])
