from django.urls import path

from . import admin_views

app_name = "queues"

urlpatterns = [
    path("", admin_views.queue_page, name="page"),
    path("<str:name>/<str:action>/", admin_views.queue_action, name="action"),
]
