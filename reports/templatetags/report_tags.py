from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as people read them: “45 s”, “12 min”, “3 h 05 min”; “—” when not measured."""
    if seconds is None:
        return "—"
    seconds = round(float(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
