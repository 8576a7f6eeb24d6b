"""JSON API routes of the reports app, included by config/api_urls.py (namespace api)."""

urlpatterns: list = []
