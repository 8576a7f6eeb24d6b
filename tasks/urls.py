from django.urls import path

from . import assignment_views, views

app_name = "tasks"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("batch/", views.task_batch, name="batch"),
    path("auto-assign/", assignment_views.auto_assign, name="auto-assign"),
    path("<int:task_id>/", views.task_detail, name="detail"),
    path("<int:task_id>/datasets/", views.task_datasets, name="datasets"),
    path("<int:task_id>/delete/", views.task_delete, name="delete"),
    path("<int:task_id>/edit/", views.task_edit, name="edit"),
    path("<int:task_id>/assign/", assignment_views.run_assign, name="assign-run"),
    path(
        "<int:task_id>/annotations/<int:annotation_id>/invalid/",
        views.task_invalid_annotation,
        name="invalid-annotation",
    ),
    path(
        "<int:task_id>/samples/<int:sample_id>/restore/",
        views.task_invalid_sample,
        name="invalid-sample",
    ),
    path(
        "<int:task_id>/descriptions.<str:fmt>",
        views.task_descriptions_export,
        name="descriptions-export",
    ),
    path("<int:task_id>/stages/<str:key>/transfer/", views.task_transfer, name="transfer"),
    path("<int:task_id>/<slug:tab>/", views.task_tab, name="tab"),
]
