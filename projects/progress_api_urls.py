"""JSON API routes for project progress, included by config/api_urls.py."""

from django.urls import path

from .progress_api import ProjectProgressApi

urlpatterns = [
    path(
        "projects/<int:project_id>/progress/",
        ProjectProgressApi.as_view(),
        name="project-progress",
    ),
]
