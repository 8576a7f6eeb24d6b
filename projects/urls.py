from django.urls import path

from . import views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_create, name="create"),
    path("<slug:slug>/", views.project_detail, name="detail"),
    path("<slug:slug>/edit/", views.project_edit, name="edit"),
    path("<slug:slug>/members/", views.project_members, name="members"),
    path("<slug:slug>/members/<int:membership_id>/", views.member_update, name="member-update"),
    path(
        "<slug:slug>/members/<int:membership_id>/remove/", views.member_remove, name="member-remove"
    ),
]
