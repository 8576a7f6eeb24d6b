from django.urls import path

from core.api_views import TokenView
from projects import api as projects_api

app_name = "api"

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("projects/", projects_api.ProjectListApi.as_view(), name="project-list"),
    path(
        "projects/<int:project_id>/", projects_api.ProjectDetailApi.as_view(), name="project-detail"
    ),
    path(
        "projects/<int:project_id>/members/",
        projects_api.MemberListApi.as_view(),
        name="member-list",
    ),
    path(
        "projects/<int:project_id>/members/<int:user_id>/",
        projects_api.MemberDetailApi.as_view(),
        name="member-detail",
    ),
]
