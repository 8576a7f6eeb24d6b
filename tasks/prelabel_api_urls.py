"""API routes for pre-labels (tasks/prelabel_api.py), included by config/api_urls.py."""

from django.urls import path

from . import prelabel_api

urlpatterns = [
    path(
        "projects/<int:project_id>/preannotations/",
        prelabel_api.PrelabelImportListApi.as_view(),
        name="preannotation-list",
    ),
    path(
        "projects/<int:project_id>/preannotations/<str:import_id>/",
        prelabel_api.PrelabelImportDetailApi.as_view(),
        name="preannotation-detail",
    ),
    path(
        "tasks/<int:task_id>/stages/<str:key>/prelabels/",
        prelabel_api.StagePrelabelsApi.as_view(),
        name="stage-prelabels",
    ),
]
