from django import forms

from core.exceptions import ApplicationError


def add_application_error(form: forms.Form, exc: ApplicationError) -> None:
    """Show a service's refusal next to the field it names, or above the form."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)
