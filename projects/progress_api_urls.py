"""JSON API routes for project progress, included by config/api_urls.py."""

urlpatterns: list = []
