from django.urls import path

from . import views

app_name = "audits"

urlpatterns = [
    path("", views.audit_list, name="list"),
    path("next/", views.audit_next, name="next"),
    path("<int:audit_id>/", views.audit_detail, name="detail"),
    path("<int:audit_id>/complete/", views.audit_complete, name="complete"),
    path(
        "<int:audit_id>/findings/<int:finding_id>/answer/",
        views.finding_answer,
        name="finding-answer",
    ),
]
