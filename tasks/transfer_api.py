"""JSON API: transfer a stage run (POST /api/v1/tasks/{id}/stages/{key}/transfer/)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from . import selectors
from .api import TaskSerializer
from .services.transfer import ensure_may_transfer, run_transfer, user_named


class TransferSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="Who takes the run over.")
    reason = serializers.CharField(
        max_length=500, help_text="Why (shown in the task's history); required."
    )
    replica = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="Which run of a consensus stage (a manager moving one of several).",
    )


class RunTransferApi(GenericAPIView):
    """Hand over your own in-progress run (annotators), or move anyone's ready or
    in-progress run (managers). The run keeps its status, attempt, annotations and time; a
    ``run_transferred`` event records who, to whom and why."""

    serializer_class = TransferSerializer

    @extend_schema(request=TransferSerializer, responses=TaskSerializer)
    def post(self, request, task_id: int, key: str):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        ensure_may_transfer(actor=request.user, task=task, stage_key=key)
        serializer = TransferSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run_transfer(
            actor=request.user,
            task=task,
            stage_key=key,
            replica=data.get("replica"),
            to_user=user_named(data["username"], field="username"),
            reason=data["reason"],
        )
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        return Response(TaskSerializer(task, context={"request": request}).data)
