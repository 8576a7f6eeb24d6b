from django import template

register = template.Library()


@register.filter
def words(value: str) -> str:
    """``stage_ready`` → ``stage ready``."""
    return str(value).replace("_", " ")
