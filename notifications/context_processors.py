from django.utils.functional import SimpleLazyObject


def notifications(request) -> dict:
    """The unread-notification count for the top bar: counted once, and only when a page
    shows it (fragments and anonymous pages cost no query)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def count() -> int:
        from .selectors import notification_unread_count

        return notification_unread_count(user=user)

    return {"unread_notifications": SimpleLazyObject(count)}
