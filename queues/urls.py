from django.urls import path

from . import views

app_name = "exports"

urlpatterns = [
    path("", views.export_list, name="list"),
    path("<int:export_id>/row/", views.export_row, name="row"),
    path("<int:export_id>/cancel/", views.export_cancel, name="cancel"),
    path("<int:export_id>/download/", views.export_download, name="download"),
]
