"""JSON API routes for assignment and transfer, included by config/api_urls.py."""

urlpatterns: list = []
