"""JSON API for tasks, stage actions, annotations, events and deliveries (API.md)."""

import re

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import Action, project_allows
from core.api import PatchSerializer
from projects.selectors import project_get_for_user

from . import selectors, services
from .filters import FILTERS, ORDERINGS, task_filter
from .models import (
    Annotation,
    Comment,
    Delivery,
    InvalidSample,
    Priority,
    Task,
    TaskEvent,
    TaskStatus,
)
from .pagination import TaskPagination
from .records import annotation_record
from .tracks import expand_tracks
from .validation import task_item_clean


class StageSerializer(serializers.Serializer):
    key = serializers.CharField(source="stage_key")
    kind = serializers.CharField()
    replica = serializers.IntegerField()
    status = serializers.CharField()
    assignee = serializers.SerializerMethodField()
    attempt = serializers.IntegerField()
    routed_to = serializers.CharField()
    feedback = serializers.CharField()
    agreement = serializers.FloatField(allow_null=True)

    def get_assignee(self, run) -> str | None:
        return run.assignee.username if run.assignee else None


class TaskSerializer(serializers.ModelSerializer):
    blueprint = serializers.SerializerMethodField()
    datasets = serializers.SerializerMethodField()
    annotators = serializers.SerializerMethodField()
    reviewers = serializers.SerializerMethodField()
    stages = StageSerializer(source="runs", many=True)
    callback = serializers.SerializerMethodField(
        help_text="State of the latest delivery's callback: none, pending, succeeded, failed."
    )

    class Meta:
        model = Task
        fields = [
            "id", "project", "name", "description", "status", "priority", "batch", "blueprint",
            "datasets", "annotators", "reviewers", "stages", "metadata", "callback_url",
            "unique_id", "callback", "created_at", "updated_at", "due_at",
        ]  # fmt: skip

    def to_representation(self, task):
        data = super().to_representation(task)
        request = self.context.get("request")
        if request is not None:
            allowed = self.context.setdefault("_can_change", {})  # one check per project
            if task.project_id not in allowed:
                allowed[task.project_id] = project_allows(request.user, task.project, Action.CHANGE)
            if not allowed[task.project_id]:
                data.pop("callback_url", None)  # it often carries a token
        return data

    def get_callback(self, task) -> str | None:
        deliveries = list(task.deliveries.all())
        return deliveries[-1].callback if deliveries else None

    def get_blueprint(self, task) -> dict:
        return {"name": task.blueprint.name, "version": task.blueprint.version}

    def get_datasets(self, task) -> list[int]:
        return [d.pk for d in task.datasets.all()]

    def get_annotators(self, task) -> list[str]:
        return [u.username for u in task.annotators.all()]

    def get_reviewers(self, task) -> list[str]:
        return [u.username for u in task.reviewers.all()]


def _iso_writer():
    """The API's datetimes as ``serializers.DateTimeField`` writes them (ISO 8601 in the
    current time zone, ``Z`` for UTC), without a field's lookups per value."""
    from django.conf import settings
    from django.utils import timezone
    from rest_framework.settings import api_settings

    if not settings.USE_TZ or api_settings.DATETIME_FORMAT != "iso-8601":
        return serializers.DateTimeField().to_representation
    zone = timezone.get_current_timezone()

    def write(value):
        if value is None:
            return None
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return write


def task_list_items(rows: list[dict], user) -> list[dict]:
    """``TaskSerializer``'s JSON (same keys, order and values) for rows of
    ``selectors.task_rows`` with every related kind: the list builds a page of plain dicts,
    without a serializer's field machinery per task. ``callback_url`` is left out where the
    user may not change the project (it often carries a token), one check per project."""
    may_change = selectors.projects_allowing(
        user=user, project_ids={row["project_id"] for row in rows}, action=Action.CHANGE
    )
    when = _iso_writer()
    items = []
    for row in rows:
        item = {
            "id": row["id"],
            "project": row["project_id"],
            "name": row["name"],
            "description": row["description"],
            "status": row["status"],
            "priority": row["priority"],
            "batch": row["batch"],
            "blueprint": {"name": row["blueprint__name"], "version": row["blueprint__version"]},
            "datasets": row["datasets"],
            "annotators": row["annotators"],
            "reviewers": row["reviewers"],
            "stages": [
                {
                    "key": run["stage_key"],
                    "kind": run["kind"],
                    "replica": run["replica"],
                    "status": run["status"],
                    "assignee": run["assignee__username"],
                    "attempt": run["attempt"],
                    "routed_to": run["routed_to"],
                    "feedback": run["feedback"],
                    "agreement": run["agreement"],
                }
                for run in row["runs"]
            ],
            "metadata": row["metadata"],
            "callback_url": row["callback_url"],
            "unique_id": row["unique_id"],
            "callback": row["callback"],
            "created_at": when(row["created_at"]),
            "updated_at": when(row["updated_at"]),
            "due_at": when(row["due_at"]),
        }
        if row["project_id"] not in may_change:
            del item["callback_url"]
        items.append(item)
    return items


class TaskInputSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    name = serializers.CharField(max_length=300)
    blueprint = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    datasets = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    annotators = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    reviewers = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    due_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    batch = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    metadata = serializers.DictField(required=False, default=dict)
    callback_url = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default=""
    )
    unique_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


def MOVES_FIELD():  # noqa: N802 - a field factory, used like a field class
    return serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True),
        required=False,
        help_text="When replacing people is ambiguous (the 400 names the choice on `moves`): "
        "who takes over whose open runs, {old username: new username}; null sends them back "
        "to the pool.",
    )


class TaskUpdateSerializer(PatchSerializer):
    name = serializers.CharField(max_length=300, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    batch = serializers.CharField(max_length=200, required=False, allow_blank=True)
    metadata = serializers.DictField(required=False)
    annotators = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Replace the task's annotators (usernames); the open runs of those removed "
        "move to those added.",
    )
    reviewers = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Replace the task's reviewers (usernames); their open review runs move too.",
    )
    moves = MOVES_FIELD()

    class Meta:
        resource = TaskSerializer
        read_only_hints = {
            "status": "it changes only through stage actions (start, submit, review)",
            "stages": "they change only through stage actions (start, submit, review)",
        }


class AnnotationSerializer(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage_key")
    author = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = [
            "id", "stage", "replica", "sample", "label", "kind", "data", "attributes", "author",
            "version", "invalid", "invalid_reason", "track", "source", "source_detail",
            "created_at", "updated_at",
        ]  # fmt: skip

    def get_author(self, annotation) -> str | None:
        return annotation.author.username if annotation.author else None

    def to_representation(self, annotation):
        # The one annotation record (tasks.records), with who wrote it and when.
        when = serializers.DateTimeField()
        return {
            **annotation_record(annotation),
            "author": self.get_author(annotation),
            "created_at": when.to_representation(annotation.created_at),
            "updated_at": when.to_representation(annotation.updated_at),
        }


TRACK_HELP = (
    "The track this box, keypoint or polygon is a keyframe of: one object across frames, "
    "interpolated between its keyframes in exports ('' on PATCH leaves the track)."
)


class AnnotationInputSerializer(serializers.Serializer):
    stage = serializers.CharField(max_length=64)
    label = serializers.CharField(max_length=64)
    kind = serializers.CharField(max_length=20, required=False)
    sample = serializers.IntegerField(required=False, allow_null=True)
    data = serializers.JSONField()
    attributes = serializers.JSONField(required=False)
    audit = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="A fix under your open standard audit of this stage (recorded before/after).",
    )
    track = serializers.CharField(required=False, allow_blank=True, help_text=TRACK_HELP)


class AnnotationPatchSerializer(PatchSerializer):
    version = serializers.IntegerField()
    audit = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="A fix under your open standard audit of this stage (recorded before/after).",
    )
    review = serializers.CharField(
        required=False,
        max_length=64,
        help_text="A fix in place by the reviewer of this review stage (one with allow_fixes, "
        "your review in progress), recorded before/after.",
    )
    data = serializers.JSONField(required=False)
    attributes = serializers.JSONField(required=False)
    invalid = serializers.BooleanField(required=False)
    invalid_reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
    track = serializers.CharField(required=False, allow_blank=True, help_text=TRACK_HELP)

    class Meta:
        resource = AnnotationSerializer


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    sample = serializers.IntegerField(required=False, allow_null=True)
    frame = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    annotation = serializers.IntegerField(required=False, allow_null=True)


class CommentSerializer(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage_key")
    author = serializers.SerializerMethodField()
    resolved_by = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = [
            "id", "kind", "body", "parent", "stage", "sample", "frame", "annotation", "author",
            "resolved", "resolved_by", "resolved_at", "created_at",
        ]  # fmt: skip

    def get_author(self, comment) -> str | None:
        return comment.author.username if comment.author else None

    def get_resolved_by(self, comment) -> str | None:
        return comment.resolved_by.username if comment.resolved_by else None


class CommentInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Comment.Kind.choices, default=Comment.Kind.COMMENT)
    body = serializers.CharField(max_length=5000)
    parent = serializers.IntegerField(required=False, allow_null=True)
    stage = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    sample = serializers.IntegerField(required=False, allow_null=True)
    frame = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    annotation = serializers.IntegerField(required=False, allow_null=True)


class ResolveSerializer(serializers.Serializer):
    resolved = serializers.BooleanField(default=True)


class InvalidSampleSerializer(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage_key")
    author = serializers.SerializerMethodField()

    class Meta:
        model = InvalidSample
        fields = ["id", "sample", "stage", "reason", "author", "created_at"]

    def get_author(self, flag) -> str | None:
        return flag.author.username if flag.author else None


class InvalidSampleInputSerializer(serializers.Serializer):
    stage = serializers.CharField(max_length=64)
    reason = serializers.CharField(max_length=500)


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    stage = serializers.CharField(source="stage_key")

    class Meta:
        model = TaskEvent
        fields = ["id", "kind", "stage", "actor", "data", "created_at"]

    def get_actor(self, event) -> str | None:
        return event.actor.username if event.actor else None


class DeliverySerializer(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage_key")
    attempts = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = ["id", "stage", "callback", "attempts", "payload", "created_at"]

    def get_attempts(self, delivery) -> list[dict]:
        return [
            {"at": a.created_at, "status_code": a.status_code, "error": a.error}
            for a in delivery.attempts.all()
        ]


def _create_items(request, items):
    """Validate the items, then create them per project through the one service — all in
    one transaction, so a bad item anywhere creates nothing; errors name the item's index."""
    import re

    from django.db import transaction
    from rest_framework.exceptions import ValidationError

    from core.exceptions import ApplicationError

    cleaned = []
    # One serializer for every item: building its fields (a deep copy) costs more than
    # validating an item. An ordinary item is cleaned in one pass (task_item_clean); the
    # serializer runs only for the others, so values and error messages are its own.
    serializer = TaskInputSerializer()
    fields = list(serializer.fields.items())
    for index, raw in enumerate(items):
        item = task_item_clean(raw, fields)
        if item is None:
            try:
                item = serializer.run_validation(raw)
            except ValidationError as exc:
                if len(items) == 1 and not request.path.endswith("/bulk/"):
                    raise
                return Response({f"[{index}]": exc.detail}, status=400)
        cleaned.append(item)
    created = []
    with transaction.atomic():
        for project_id in dict.fromkeys(item["project"] for item in cleaned):
            project = project_get_for_user(
                user=request.user, project_id=project_id, action=Action.CHANGE
            )
            positions = [i for i, item in enumerate(cleaned) if item["project"] == project_id]
            batch = []
            for i in positions:
                item = dict(cleaned[i])
                item.pop("project")
                item["blueprint"] = item.get("blueprint") or None
                batch.append(item)
            try:
                created += services.task_create_ids(
                    actor=request.user, project=project, items=batch
                )
            except ApplicationError as exc:
                found = re.match(r"^\[(\d+)\]", exc.field or "")
                if found:  # the service counts within this project's items
                    original = positions[int(found.group(1))]
                    exc.field = f"[{original}]" + exc.field[found.end() :]
                raise
    return created  # the new tasks' ids


class TaskListApi(ListAPIView):
    serializer_class = TaskSerializer
    pagination_class = TaskPagination  # ids first; count exact up to 10,000, then estimated

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int),
            OpenApiParameter("status", enum=TaskStatus.values),
            OpenApiParameter("assignee", str),
            OpenApiParameter("reviewer", str),
            OpenApiParameter("priority", enum=Priority.values),
            OpenApiParameter("batch", str),
            OpenApiParameter("search", str),
            OpenApiParameter("due_after", OpenApiTypes.DATE),
            OpenApiParameter("due_before", OpenApiTypes.DATE),
            OpenApiParameter("overdue", bool),
            OpenApiParameter("ordering", enum=list(ORDERINGS)),
            OpenApiParameter("cursor", str, description="next_cursor/previous_cursor of a page"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        # Query parameters other than filters (page, page_size, cursor) are the paginator's.
        params = {k: v for k, v in self.request.query_params.items() if k in FILTERS}
        filters = task_filter(params)
        return selectors.task_list_for_user(user=self.request.user, filters=filters)

    def list(self, request, *args, **kwargs):
        # The page's ids from the index, then its tasks as plain rows: one query per related
        # kind, TaskSerializer's JSON without its per-task field machinery.
        def rows(ids: list[int]) -> list[dict]:
            found = selectors.task_rows(
                ids, fields=selectors.TASK_LIST_FIELDS, related=selectors.TASK_RELATED
            )
            return task_list_items(found, request.user)

        self.paginator.rows = rows
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(page)

    @extend_schema(request=TaskInputSerializer, responses={201: TaskSerializer})
    def post(self, request):
        """Create a task: a project and a name are enough (the active blueprint is used)."""
        if not isinstance(request.data, dict):
            raise ParseError("The body must be one task object; use /tasks/bulk/ for a list.")
        created = _create_items(request, [request.data])
        if isinstance(created, Response):
            return created
        task = selectors.task_get_for_user(user=request.user, task_id=created[0])
        return Response(
            TaskSerializer(task, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class TaskBulkApi(GenericAPIView):
    serializer_class = TaskInputSerializer

    @extend_schema(request=TaskInputSerializer(many=True), responses={201: dict})
    def post(self, request):
        """Create many tasks at once (bulk inserts); all or nothing."""
        items = request.data
        if not isinstance(items, list) or not items:
            raise ParseError("The body must be a non-empty list of task objects.")
        if len(items) > 10_000:
            raise ParseError("At most 10,000 tasks per request.")
        created = _create_items(request, items)
        if isinstance(created, Response):
            return created
        return Response({"created": len(created), "ids": created}, status=201)


class TaskDetailApi(GenericAPIView):
    serializer_class = TaskSerializer

    def get(self, request, task_id: int):
        return Response(
            TaskSerializer(
                selectors.task_get_for_user(user=request.user, task_id=task_id),
                context={"request": request},
            ).data
        )

    @extend_schema(request=TaskUpdateSerializer)
    def patch(self, request, task_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.CHANGE)
        serializer = TaskUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.task_update(actor=request.user, task=task, **serializer.validated_data)
        return Response(
            TaskSerializer(
                selectors.task_get_for_user(user=request.user, task_id=task_id),
                context={"request": request},
            ).data
        )

    def delete(self, request, task_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.CHANGE)
        services.task_delete(actor=request.user, task=task)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StageActionApi(GenericAPIView):
    serializer_class = StageSerializer
    action_name = ""

    @extend_schema(request=None, responses=TaskSerializer)
    def post(self, request, task_id: int, key: str):
        # Who may start or submit a run depends on the stage's kind (reviewers start their
        # review runs, annotators annotate runs): the service decides, not an up-front role.
        action = Action.REVIEW if self.action_name == "review" else Action.VIEW
        task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=action)
        if self.action_name == "start":
            services.stage_start(actor=request.user, task=task, stage_key=key)
        elif self.action_name == "submit":
            services.stage_submit(actor=request.user, task=task, stage_key=key)
        else:
            serializer = ReviewSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            services.stage_review(
                actor=request.user, task=task, stage_key=key, **serializer.validated_data
            )
        return Response(
            TaskSerializer(
                selectors.task_get_for_user(user=request.user, task_id=task_id),
                context={"request": request},
            ).data
        )


class StageStartApi(StageActionApi):
    action_name = "start"


class StageSubmitApi(StageActionApi):
    action_name = "submit"


class StageReviewApi(StageActionApi):
    action_name = "review"

    @extend_schema(request=ReviewSerializer, responses=TaskSerializer)
    def post(self, request, task_id: int, key: str):
        return super().post(request, task_id, key)


class AnnotationListApi(ListAPIView):
    serializer_class = AnnotationSerializer
    pagination_class = None

    def get_queryset(self):
        task = selectors.task_get_for_user(user=self.request.user, task_id=self.kwargs["task_id"])
        annotations = task.annotations.select_related("author").order_by("id")
        hidden = selectors.hidden_annotation_ids(task=task, user=self.request.user)
        annotations = annotations.exclude(pk__in=hidden) if hidden else annotations
        if self.request.query_params.get("frames") == "all":
            # Tracks frame by frame, as exports write them: in-between frames with id null.
            return expand_tracks(list(annotations))
        return annotations

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "frames",
                enum=["all"],
                description="all: every frame of each track (interpolated ones with id null)",
            )
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=AnnotationInputSerializer, responses={201: AnnotationSerializer})
    def post(self, request, task_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        serializer = AnnotationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation = services.annotation_create(
            actor=request.user, task=task, **serializer.validated_data
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class AnnotationDetailApi(GenericAPIView):
    serializer_class = AnnotationSerializer

    def _get(self, request, task_id, annotation_id):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        return get_object_or_404(Annotation, pk=annotation_id, task=task)

    @extend_schema(request=AnnotationPatchSerializer)
    def patch(self, request, task_id: int, annotation_id: int):
        annotation = self._get(request, task_id, annotation_id)
        serializer = AnnotationPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = services.annotation_update(
            actor=request.user, annotation=annotation, **serializer.validated_data
        )
        return Response(AnnotationSerializer(updated).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("version", int),
            OpenApiParameter("audit", int),
            OpenApiParameter("review", str, description="A reviewer's fix: the review stage."),
        ]
    )
    def delete(self, request, task_id: int, annotation_id: int):
        annotation = self._get(request, task_id, annotation_id)
        version = request.query_params.get("version")
        audit = request.query_params.get("audit")
        services.annotation_delete(
            actor=request.user,
            annotation=annotation,
            version=int(version) if version and re.fullmatch(r"[0-9]{1,9}", version) else None,
            audit=audit or None,
            review=request.query_params.get("review") or None,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommentListApi(ListAPIView):
    """A task's comments, oldest first; POST adds one (any member who sees the task)."""

    serializer_class = CommentSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "stage", str, description="Only those concerning this stage's workspace."
            )
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        task = selectors.task_get_for_user(user=self.request.user, task_id=self.kwargs["task_id"])
        if stage := self.request.query_params.get("stage"):
            from .review_selectors import stage_comments

            return stage_comments(task=task, user=self.request.user, stage_key=stage)
        comments = task.comments.select_related("author", "resolved_by").order_by("id")
        hidden = selectors.hidden_annotation_ids(task=task, user=self.request.user)
        return comments.exclude(annotation__in=hidden) if hidden else comments

    @extend_schema(request=CommentInputSerializer, responses={201: CommentSerializer})
    def post(self, request, task_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        serializer = CommentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        comment = services.comment_create(
            actor=request.user, task=task, stage_key=data.pop("stage"), **data
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class CommentResolveApi(GenericAPIView):
    serializer_class = CommentSerializer

    @extend_schema(request=ResolveSerializer, responses=CommentSerializer)
    def post(self, request, task_id: int, comment_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        comment = get_object_or_404(Comment, pk=comment_id, task=task)
        serializer = ResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = services.comment_resolve(
            actor=request.user, comment=comment, **serializer.validated_data
        )
        return Response(CommentSerializer(comment).data)


class InvalidSampleListApi(ListAPIView):
    """The task's samples marked invalid, with the reasons."""

    serializer_class = InvalidSampleSerializer
    pagination_class = None

    def get_queryset(self):
        task = selectors.task_get_for_user(user=self.request.user, task_id=self.kwargs["task_id"])
        return task.invalid_samples.select_related("author").order_by("id")


class SampleInvalidApi(GenericAPIView):
    """Mark one of the task's samples invalid (POST) or restore it (DELETE)."""

    serializer_class = InvalidSampleSerializer

    @extend_schema(request=InvalidSampleInputSerializer, responses={201: InvalidSampleSerializer})
    def post(self, request, task_id: int, sample_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        serializer = InvalidSampleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flag = services.sample_mark_invalid(
            actor=request.user, task=task, sample=sample_id, **serializer.validated_data
        )
        return Response(InvalidSampleSerializer(flag).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request, task_id: int, sample_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        services.sample_restore(actor=request.user, task=task, sample=sample_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TaskSamplesSyncApi(APIView):
    """GET: the task's samples changed by a dataset re-sync; POST: catch up with them."""

    @extend_schema(
        responses=inline_serializer(
            "ChangedSamples",
            {
                "changed": serializers.ListField(
                    child=inline_serializer(
                        "ChangedSample",
                        {
                            "id": serializers.IntegerField(),
                            "name": serializers.CharField(),
                            "changed_at": serializers.DateTimeField(),
                        },
                    )
                )
            },
        )
    )
    def get(self, request, task_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        changed = services.changed_samples(task)
        return Response(
            {"changed": [{"id": s.pk, "name": s.name, "changed_at": s.changed_at} for s in changed]}
        )

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "SamplesSynced",
            {
                "samples": serializers.ListField(child=serializers.CharField()),
                "invalidated": serializers.IntegerField(),
            },
        ),
    )
    def post(self, request, task_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        return Response(services.task_samples_sync(actor=request.user, task=task))


class TaskEventsApi(ListAPIView):
    serializer_class = EventSerializer
    pagination_class = None

    def get_queryset(self):
        task = selectors.task_get_for_user(user=self.request.user, task_id=self.kwargs["task_id"])
        return task.events.select_related("actor").order_by("id")


class TaskDeliveriesApi(ListAPIView):
    serializer_class = DeliverySerializer
    pagination_class = None

    def get_queryset(self):
        task = selectors.task_get_for_user(user=self.request.user, task_id=self.kwargs["task_id"])
        return task.deliveries.prefetch_related("attempts").order_by("id")


class NextSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["annotate", "review"], default="annotate")


class TaskNextApi(GenericAPIView):
    serializer_class = TaskSerializer

    @extend_schema(request=NextSerializer, responses={200: TaskSerializer, 204: None})
    def post(self, request):
        """Claim the next stage run that fits your skills (priority, then due date);
        ``{"kind": "review"}`` claims the next review instead."""
        serializer = NextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = serializer.validated_data["kind"] == "review"
        run = services.stage_claim_next(actor=request.user, review=review)
        if run is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        task = selectors.task_get_for_user(user=request.user, task_id=run.task_id)
        return Response(TaskSerializer(task, context={"request": request}).data)


class BatchSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["delete", "assign", "update", "start", "approve", "reject"]
    )
    stage = serializers.CharField(required=False, max_length=64)
    comment = serializers.CharField(required=False, allow_blank=True)
    ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    filter = serializers.DictField(required=False)
    annotators = serializers.ListField(child=serializers.CharField(), required=False)
    reviewers = serializers.ListField(child=serializers.CharField(), required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    batch = serializers.CharField(required=False, allow_blank=True, max_length=200)
    moves = MOVES_FIELD()

    def validate(self, data):
        if ("ids" in data) == ("filter" in data):
            raise serializers.ValidationError({"ids": ["Give either ids or a filter."]})
        return data


class TaskBatchApi(GenericAPIView):
    serializer_class = BatchSerializer

    @extend_schema(request=BatchSerializer, responses={200: dict})
    def post(self, request):
        """Delete, reassign or update many tasks, chosen by ids or by a list filter, or start
        a stage of them or approve or reject its review (``stage``, ``comment``)."""
        from . import batch

        batch.ensure_manager(request.user)
        serializer = BatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        affected = batch.task_batch_apply(
            actor=request.user,
            action=data["action"],
            ids=data.get("ids"),
            filters=data.get("filter"),
            annotators=data.get("annotators"),
            reviewers=data.get("reviewers"),
            changes={k: data[k] for k in ("priority", "due_at", "batch") if k in data},
            moves=data.get("moves"),
            stage=data.get("stage", ""),
            comment=data.get("comment", ""),
        )
        return Response({"affected": affected})
