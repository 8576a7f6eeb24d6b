from django.urls import path

from . import views

app_name = "experience"

urlpatterns = [
    path("", views.post_list, name="list"),
    path("new/", views.post_create, name="create"),
    path("<int:post_id>/", views.post_detail, name="detail"),
    path("<int:post_id>/comments/", views.post_comment, name="comment"),
    path("<int:post_id>/edit/", views.post_edit, name="edit"),
    path("<int:post_id>/delete/", views.post_delete, name="delete"),
    path("<int:post_id>/promote/", views.post_promote, name="promote"),
]
