"""JSON API routes of the notifications app, included by config/api_urls.py (namespace api)."""

from django.urls import path

from . import api

urlpatterns: list = [
    path("notifications/", api.NotificationListApi.as_view(), name="notification-list"),
    path("notifications/read/", api.NotificationReadApi.as_view(), name="notification-read"),
]
