from django.urls import path

from tasks import prelabel_views
from tasks import views as task_views

from . import data_views, views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_create, name="create"),
    path("<slug:slug>/", views.project_detail, name="detail"),
    path("<slug:slug>/edit/", views.project_edit, name="edit"),
    path("<slug:slug>/tasks/", views.project_tasks, name="tasks"),
    path("<slug:slug>/quality-control/", views.project_quality, name="quality-control"),
    path(
        "<slug:slug>/quality-control/random-sample/",
        views.project_random_sample_review,
        name="quality-random-sample",
    ),
    path("<slug:slug>/members/", views.project_members, name="members"),
    path("<slug:slug>/members/<int:membership_id>/", views.member_update, name="member-update"),
    path(
        "<slug:slug>/members/<int:membership_id>/remove/", views.member_remove, name="member-remove"
    ),
    path("<slug:slug>/guidelines/", views.project_guidelines, name="guidelines"),
    path(
        "<slug:slug>/guidelines/<int:guideline_id>/edit/",
        views.guideline_edit,
        name="guideline-edit",
    ),
    path(
        "<slug:slug>/guidelines/<int:guideline_id>/delete/",
        views.guideline_delete,
        name="guideline-delete",
    ),
    path("<slug:slug>/data/", data_views.project_data, name="data"),
    path("<slug:slug>/data/prelabels/", prelabel_views.project_prelabels, name="prelabels"),
    path("<slug:slug>/data/<int:dataset_id>/", data_views.dataset_detail, name="dataset"),
    path(
        "<slug:slug>/data/<int:dataset_id>/resync/",
        data_views.dataset_resync,
        name="dataset-resync",
    ),
    path(
        "<slug:slug>/data/<int:dataset_id>/progress/",
        data_views.dataset_progress,
        name="dataset-progress",
    ),
    path(
        "<slug:slug>/samples/<int:sample_id>/strip/<str:camera>/",
        data_views.sample_strip,
        name="sample-strip",
    ),
    path(
        "<slug:slug>/samples/<int:sample_id>/plot.svg", data_views.sample_plot, name="sample-plot"
    ),
    path("<slug:slug>/tasks/new/", task_views.task_create, name="task-from-selection"),
]
