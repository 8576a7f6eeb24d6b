from django import template

from core.access import Action, project_allows

register = template.Library()


@register.simple_tag(takes_context=True)
def quality_link_label(context, project) -> str:
    """“Quality” for those who see everyone's figures, “My quality” for annotators."""
    user = context["request"].user
    return "Quality" if project_allows(user, project, Action.REVIEW) else "My quality"


@register.filter
def percent(value) -> str:
    """A share 0–1 as a whole percentage; “—” when it was not measured."""
    return "—" if value is None else f"{value * 100:.0f}%"
