"""JSON API routes of the experience app, included by config/api_urls.py (namespace api)."""

from django.urls import path

from . import api

urlpatterns: list = [
    path("projects/<int:project_id>/posts/", api.PostListApi.as_view(), name="post-list"),
    path("posts/<int:post_id>/", api.PostDetailApi.as_view(), name="post-detail"),
    path(
        "posts/<int:post_id>/comments/", api.PostCommentListApi.as_view(), name="post-comment-list"
    ),
    path("posts/<int:post_id>/promote/", api.PostPromoteApi.as_view(), name="post-promote"),
]
