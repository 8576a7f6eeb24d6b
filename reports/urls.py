from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", views.report_index, name="index"),
    path("personal/", views.personal_report, name="personal"),
    path("team/", views.team_report, name="team"),
    path("project/<slug:slug>/", views.project_report, name="project"),
]
