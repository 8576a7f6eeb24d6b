from django.urls import path

from . import views

app_name = "connectors"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("<int:connection_id>/", views.connection_detail, name="detail"),
    path("<int:connection_id>/test/", views.connection_test, name="test"),
    path("<int:connection_id>/episodes/", views.connection_episodes, name="episodes"),
    path("<int:connection_id>/sync/", views.connection_sync, name="sync"),
    path("<int:connection_id>/delete/", views.connection_delete, name="delete"),
]
