"""JSON API routes of the notifications app, included by config/api_urls.py (namespace api)."""

urlpatterns: list = []
