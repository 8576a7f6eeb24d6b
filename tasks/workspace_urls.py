from django.urls import path

from . import workspace

app_name = "workspace"

urlpatterns = [
    path("", workspace.my_work, name="mine"),
    path("next/", workspace.start_next, name="next"),
    path("<int:task_id>/<slug:stage_key>/", workspace.workspace, name="run"),
    path("<int:task_id>/<slug:stage_key>/open/", workspace.open_run, name="open"),
    path("<int:task_id>/<slug:stage_key>/activity/", workspace.activity, name="activity"),
]
