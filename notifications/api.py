"""JSON API for notifications: everyone reads and marks only their own."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from . import selectors, services
from .models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    unread = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "message",
            "url",
            "project",
            "task",
            "created_at",
            "read_at",
            "unread",
        ]


class NotificationReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        max_length=services.MAX_IDS,
        help_text="The notifications to mark read (others' ids are ignored).",
    )
    all = serializers.BooleanField(required=False, help_text="Mark every notification read.")

    def validate(self, data):
        if not data.get("all") and "ids" not in data:
            raise serializers.ValidationError({"ids": ["Give the ids to mark read, or all: true."]})
        return data


class NotificationReadResultSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many were unread and are read now.")
    unread = serializers.IntegerField(help_text="How many stay unread.")


class NotificationListApi(ListAPIView):
    """My notifications, newest first (paginated); ``?unread=1`` for the unread ones only."""

    serializer_class = NotificationSerializer

    def get_queryset(self):
        unread = self.request.query_params.get("unread", "") in {"1", "true", "yes"}
        return selectors.notification_list(user=self.request.user, unread_only=unread)

    @extend_schema(
        parameters=[OpenApiParameter("unread", str, enum=["1", "0"], description="1: unread only.")]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class NotificationReadApi(GenericAPIView):
    serializer_class = NotificationReadSerializer

    @extend_schema(request=NotificationReadSerializer, responses=NotificationReadResultSerializer)
    def post(self, request):
        """Mark notifications read: ``{"ids": [...]}`` or ``{"all": true}``."""
        serializer = NotificationReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        marked = services.mark_read(
            user=request.user, ids=data.get("ids"), all=bool(data.get("all"))
        )
        unread = selectors.notification_unread_count(user=request.user)
        return Response({"marked": marked, "unread": unread})
