"""JSON API for the audit trail (read-only)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from . import selectors
from .models import VERBS, Activity


class ActivitySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()
    project_name = serializers.CharField(read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id",
            "created_at",
            "actor",
            "verb",
            "target",
            "project",
            "project_name",
            "before",
            "after",
        ]

    def get_actor(self, row: Activity) -> str | None:
        """The username, or null when the system acted."""
        return row.actor.username if row.actor else (row.actor_name or None)

    def get_target(self, row: Activity) -> dict:
        return {"type": row.target_type, "id": row.target_id, "label": row.target_label}


class ActivityListApi(ListAPIView):
    """The audit trail, newest first: managers read their projects' rows, administrators
    all rows (queue actions have no project)."""

    serializer_class = ActivitySerializer

    def get_queryset(self):
        selectors.activity_require_reader(user=self.request.user)
        filters = {k: self.request.query_params.get(k, "") for k in ("project", "actor", "verb")}
        return selectors.activity_list_for_user(user=self.request.user, filters=filters)

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int, description="Only this project's rows."),
            OpenApiParameter("actor", str, description="Only this user's actions (username)."),
            OpenApiParameter(
                "verb",
                str,
                description="A verb (e.g. `project.updated`) or a family (e.g. `dataset`). "
                f"Verbs: {', '.join(VERBS)}.",
            ),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
