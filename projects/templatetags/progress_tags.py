"""Presentation of progress figures: durations and rates in words."""

from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as a short duration: “45 s”, “12 min”, “3.5 h”, “4 days”; “—” for None."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    days = seconds / 86400
    return f"{days:.0f} days" if days >= 10 else f"{days:.1f} days".replace(".0 days", " days")


@register.filter
def rate(value) -> str:
    """A rate per day with at most one decimal (“2.5”, “12”)."""
    if value is None:
        return "—"
    return f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}"
