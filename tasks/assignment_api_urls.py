"""JSON API routes for assignment and transfer, included by config/api_urls.py."""

from django.urls import path

from . import transfer_api

urlpatterns: list = [
    path(
        "tasks/<int:task_id>/stages/<str:key>/transfer/",
        transfer_api.RunTransferApi.as_view(),
        name="stage-transfer",
    ),
]
