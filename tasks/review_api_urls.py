"""JSON API routes for review per annotation and batch annotation, included by
config/api_urls.py."""

from django.urls import path

from . import review_api

urlpatterns: list = [
    path(
        "tasks/<int:task_id>/annotation-reviews/",
        review_api.AnnotationReviewListApi.as_view(),
        name="annotation-review-list",
    ),
    path(
        "tasks/<int:task_id>/stages/<str:key>/verdicts/",
        review_api.AnnotationVerdictApi.as_view(),
        name="stage-verdict",
    ),
    path(
        "tasks/<int:task_id>/annotations/batch/",
        review_api.BatchAnnotationApi.as_view(),
        name="annotation-batch",
    ),
]
