"""Form fields shared by the feature blueprints."""

from __future__ import annotations

from wtforms import SelectField

from app.ids import form_id


class IdSelectField(SelectField):
    """A choice of one row by its id. A posted value that is not one of our ids (a tampered or stale form)
    gets a sentence a person understands instead of WTForms' "Invalid Choice: could not coerce"."""

    def __init__(self, label=None, validators=None, *, invalid_message: str = "Choose one from the list.", **kwargs):
        super().__init__(label, validators, coerce=form_id, **kwargs)
        self.invalid_message = invalid_message

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            raise ValueError(self.invalid_message) from error
