"""JSON API routes of the experience app, included by config/api_urls.py (namespace api)."""

urlpatterns: list = []
