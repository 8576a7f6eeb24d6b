def notifications(request) -> dict:
    """The unread-notification count for the top bar (filled in by the notifications app)."""
    return {}
