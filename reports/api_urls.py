"""JSON API routes of the reports app, included by config/api_urls.py (namespace api)."""

from django.urls import path

from . import api

urlpatterns = [
    path("reports/personal/", api.PersonalReportApi.as_view(), name="report-personal"),
    path("reports/team/", api.TeamReportApi.as_view(), name="report-team"),
    path("reports/project/", api.ProjectReportApi.as_view(), name="report-project"),
]
