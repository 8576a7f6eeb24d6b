"""JSON API routes for assignment and transfer, included by config/api_urls.py."""

from django.urls import path

from . import assignment_api, transfer_api

urlpatterns: list = [
    path("tasks/auto-assign/", assignment_api.AutoAssignApi.as_view(), name="task-auto-assign"),
    path(
        "tasks/<int:task_id>/stages/<str:key>/assign/",
        assignment_api.RunAssignApi.as_view(),
        name="stage-assign",
    ),
    path(
        "tasks/<int:task_id>/stages/<str:key>/transfer/",
        transfer_api.RunTransferApi.as_view(),
        name="stage-transfer",
    ),
]
