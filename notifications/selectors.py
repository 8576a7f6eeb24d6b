"""Reading notifications: everyone sees only their own."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Notification


def notification_unread_count(*, user) -> int:
    """The top bar's figure: one COUNT on the partial index of unread rows."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_list(*, user, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's notifications, newest first (the page marks the unread ones)."""
    if not getattr(user, "is_authenticated", False):
        return Notification.objects.none()
    found = Notification.objects.filter(user=user)
    if unread_only:
        found = found.filter(read_at__isnull=True)
    return found.order_by("-created_at", "-id")


def notification_get_for_user(*, user, notification_id: int) -> Notification:
    """One of the user's notifications; anyone else's is 404 (admins included)."""
    return get_object_or_404(Notification, pk=notification_id, user=user.pk)
