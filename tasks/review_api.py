"""JSON API for review per annotation (verdicts, missing marks) and batch annotation.

Thin translation onto tasks.services.review and tasks.services.batch_annotation; who may
do what is the services' decision (a task the caller cannot see answers 404)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.access import Action

from . import review_selectors, selectors
from .models import AnnotationReview
from .services.batch_annotation import annotation_apply_many
from .services.review import annotation_review


class AnnotationReviewSerializer(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage_key")
    reviewer = serializers.SerializerMethodField()
    comment = serializers.SerializerMethodField()

    class Meta:
        model = AnnotationReview
        fields = [
            "id", "stage", "review_stage", "annotation", "verdict", "sample", "frame", "label",
            "data", "comment", "attempt", "reviewer", "updated_at",
        ]  # fmt: skip

    def get_reviewer(self, review) -> str | None:
        return review.reviewer.username if review.reviewer else None

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_comment(self, review) -> dict | None:
        c = review.comment
        if c is None:
            return None
        return {"id": c.pk, "body": c.body, "kind": c.kind, "resolved": c.resolved}


class VerdictInputSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["accept", "reject", "missing"])
    annotation = serializers.IntegerField(required=False, allow_null=True)
    mark = serializers.IntegerField(
        required=False, allow_null=True, help_text="A missing mark of this review (to withdraw)."
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    sample = serializers.IntegerField(required=False, allow_null=True)
    frame = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    label = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    data = serializers.JSONField(required=False, allow_null=True)
    stage = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)


class AnnotationReviewListApi(ListAPIView):
    """A task's verdicts on annotations and missing marks; ``?stage=`` those concerning
    that stage's workspace (a review: the stages it reviews)."""

    serializer_class = AnnotationReviewSerializer
    pagination_class = None

    @extend_schema(parameters=[OpenApiParameter("stage", str)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        task = selectors.task_get_for_user(user=self.request.user, task_id=self.kwargs["task_id"])
        return review_selectors.annotation_reviews(
            task=task, user=self.request.user, stage_key=self.request.query_params.get("stage", "")
        )


class AnnotationVerdictApi(GenericAPIView):
    """The reviewer of review stage ``key`` accepts or rejects one annotation, or marks one
    missing (label, sample, frame, optional region), with a comment pinned to it."""

    serializer_class = AnnotationReviewSerializer

    @extend_schema(request=VerdictInputSerializer, responses={201: AnnotationReviewSerializer})
    def post(self, request, task_id: int, key: str):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.REVIEW)
        serializer = VerdictInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = annotation_review(
            actor=request.user, task=task, review_stage=key, **serializer.validated_data
        )
        return Response(AnnotationReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class BatchAnnotationInputSerializer(serializers.Serializer):
    stage = serializers.CharField(max_length=64)
    label = serializers.CharField(max_length=64)
    samples = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)
    data = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="A classification's {value} or a segment's {start, end}; leave it out to "
        "set attribute values on the samples' existing annotations of the label.",
    )
    attributes = serializers.JSONField(required=False)
    dry_run = serializers.BooleanField(default=False, help_text="Count only (the preview).")


BATCH_RESULT = inline_serializer(
    "BatchAnnotationResult",
    {
        "dry_run": serializers.BooleanField(),
        "count": serializers.IntegerField(),
        "created": serializers.IntegerField(),
        "changed": serializers.IntegerField(),
        "skipped": serializers.ListField(child=serializers.DictField()),
        "annotations": serializers.ListField(child=serializers.DictField()),
    },
)


class BatchAnnotationApi(GenericAPIView):
    """Apply one classification, segment or attribute values to many samples of the task in
    the caller's run of ``stage`` (``dry_run``: the preview's counts)."""

    serializer_class = BatchAnnotationInputSerializer

    @extend_schema(request=BatchAnnotationInputSerializer, responses=BATCH_RESULT)
    def post(self, request, task_id: int):
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        serializer = BatchAnnotationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = annotation_apply_many(actor=request.user, task=task, **serializer.validated_data)
        return Response(
            result, status=status.HTTP_200_OK if result["dry_run"] else status.HTTP_201_CREATED
        )
