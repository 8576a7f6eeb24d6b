from django.urls import path

from . import views

app_name = "blueprints"

urlpatterns = [
    path("", views.blueprint_list, name="list"),
    path("new/", views.blueprint_create, name="create"),
    path("validate/", views.blueprint_validate, name="validate"),
    path("upload/", views.blueprint_upload, name="upload"),
    path("compare/", views.blueprint_compare, name="compare"),
    path("<int:blueprint_id>/", views.blueprint_detail, name="detail"),
    path("<int:blueprint_id>/edit/", views.blueprint_edit, name="edit"),
    path("<int:blueprint_id>/download/", views.blueprint_download, name="download"),
    path("<int:blueprint_id>/activate/", views.blueprint_activate, name="activate"),
]
