"""JSON API for assignment: auto-assign (preview and apply) and reserving one stage run.

Thin translation onto tasks.services.assignment; managers and administrators only (a task
the caller cannot see answers 404, one they see but do not manage 403)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.access import Action, require
from core.exceptions import Conflict

from . import selectors
from .services import assignment


class AutoAssignSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    filter = serializers.DictField(required=False, help_text="Task list filters, as /tasks/.")
    weight_by_quality = serializers.BooleanField(default=False)
    apply = serializers.BooleanField(
        default=False, help_text="false: the preview only; true: assign."
    )
    expected = serializers.JSONField(
        required=False,
        help_text="The preview's token (or its counts per username): applying refuses with "
        "409 and the new plan when the plan changed since.",
    )

    def validate(self, data):
        if ("ids" in data) == ("filter" in data):
            raise serializers.ValidationError({"ids": ["Give either ids or a filter."]})
        return data


PLAN = inline_serializer(
    "AutoAssignPlan",
    {
        "assignments": inline_serializer(
            "AutoAssignShare",
            {
                "username": serializers.CharField(),
                "runs": serializers.IntegerField(),
                "load": serializers.IntegerField(help_text="Open runs before the plan."),
                "capacity": serializers.IntegerField(),
            },
            many=True,
        ),
        "unassignable": inline_serializer(
            "AutoAssignLeftOver",
            {
                "task": serializers.IntegerField(),
                "stage": serializers.CharField(),
                "replica": serializers.IntegerField(),
                "reason": serializers.CharField(),
            },
            many=True,
        ),
        "assigned": serializers.IntegerField(),
        "considered": serializers.IntegerField(),
        "token": serializers.CharField(),
        "applied": serializers.BooleanField(),
    },
)


class AutoAssignApi(GenericAPIView):
    serializer_class = AutoAssignSerializer

    @extend_schema(request=AutoAssignSerializer, responses={200: PLAN, 409: PLAN})
    def post(self, request):
        """Distribute the chosen tasks' ready, unreserved stage runs among eligible people
        (skills, capacity, least loaded first; optionally weighted by quality). Without
        ``apply`` nothing changes: the answer is the preview."""
        from .batch import ensure_manager

        ensure_manager(request.user)
        serializer = AutoAssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        selection = assignment.assignment_selection(
            actor=request.user, ids=data.get("ids"), filters=data.get("filter")
        )
        weight = data["weight_by_quality"]
        if not data["apply"]:
            plan = assignment.auto_assign_plan(
                actor=request.user, selection=selection, weight_by_quality=weight
            )
            return Response(plan.as_dict())
        try:
            plan = assignment.auto_assign_apply(
                actor=request.user,
                selection=selection,
                weight_by_quality=weight,
                expected=data.get("expected"),
            )
        except Conflict as exc:
            return Response(
                {"detail": exc.message, **exc.extra["plan"]}, status=status.HTTP_409_CONFLICT
            )
        return Response(plan.as_dict())


class RunAssignSerializer(serializers.Serializer):
    username = serializers.CharField(
        allow_null=True, help_text="Who the ready run is reserved for; null clears it."
    )
    replica = serializers.IntegerField(
        required=False, min_value=0, help_text="A consensus stage's replica (else the first free)."
    )
    force = serializers.BooleanField(
        default=False, help_text="Assign even past the person's capacity."
    )


RUN = inline_serializer(
    "AssignedRun",
    {
        "task": serializers.IntegerField(),
        "stage": serializers.CharField(),
        "replica": serializers.IntegerField(),
        "status": serializers.CharField(),
        "assignee": serializers.CharField(allow_null=True),
    },
)


class RunAssignApi(GenericAPIView):
    serializer_class = RunAssignSerializer

    @extend_schema(request=RunAssignSerializer, responses={200: RUN})
    def post(self, request, task_id: int, key: str):
        """Reserve a ready stage run for an eligible person (or clear the reservation). A
        person at capacity is refused (400, ``at_capacity``) unless ``force``."""
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        require(request.user, task.project, Action.CHANGE, "Only managers assign stage runs.")
        serializer = RunAssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = assignment.run_assign(
            actor=request.user,
            task=task,
            stage_key=key,
            replica=data.get("replica"),
            user=assignment.person_for_assignment(task=task, username=data["username"]),
            force=data["force"],
        )
        return Response(
            {
                "task": run.task_id,
                "stage": run.stage_key,
                "replica": run.replica,
                "status": run.status,
                "assignee": run.assignee.username if run.assignee else None,
            }
        )
