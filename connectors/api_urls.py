"""JSON API routes of bucket connections, included by config/api_urls.py (namespace api)."""

from django.urls import path

from . import api

urlpatterns: list = [
    path(
        "projects/<int:project_id>/connections/",
        api.ConnectionListApi.as_view(),
        name="connection-list",
    ),
    path(
        "connections/<int:connection_id>/",
        api.ConnectionDetailApi.as_view(),
        name="connection-detail",
    ),
    path(
        "connections/<int:connection_id>/test/",
        api.ConnectionTestApi.as_view(),
        name="connection-test",
    ),
    path(
        "connections/<int:connection_id>/episodes/",
        api.ConnectionEpisodesApi.as_view(),
        name="connection-episodes",
    ),
    path(
        "connections/<int:connection_id>/sync/",
        api.ConnectionSyncApi.as_view(),
        name="connection-sync",
    ),
]
