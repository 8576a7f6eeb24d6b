from django import forms

from core.exceptions import ApplicationError, Conflict


def add_application_error(form: forms.Form, exc: ApplicationError) -> None:
    """Show a service's refusal next to the field it names, or above the form."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)


def save_versioned(form: forms.Form, instance, save) -> tuple[bool, object | None]:
    """Run ``save()`` for an edit form guarded by a ``version`` field.

    Returns ``(saved, current)``: on a stale edit the refusal goes on the form, ``current`` is
    the instance as saved now (to show), and the form carries the new version so that saving
    again after reading it is a conscious overwrite. Other refusals go on the form too.
    """
    try:
        save()
    except Conflict as exc:
        add_application_error(form, exc)
        instance.refresh_from_db()
        form.data = form.data.copy()
        form.data["version"] = instance.version
        return False, instance
    except ApplicationError as exc:
        add_application_error(form, exc)
        return False, None
    return True, None
