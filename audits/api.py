"""JSON API for audits (API.md): open an audit, record findings, answer and settle them,
complete it; Audit next claims the next unit of the audit queue."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.api import Pagination
from core.parsers import whole_number
from tasks.selectors import task_get_for_user

from . import audit_selectors, services
from .models import Audit, AuditFinding


class FindingSerializer(serializers.ModelSerializer):
    frames = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    annotator = serializers.SerializerMethodField()
    stage = serializers.CharField(source="stage_key")

    class Meta:
        model = AuditFinding
        fields = [
            "id", "audit", "type", "category", "annotation", "attribute", "sample", "frames",
            "note", "state", "upheld", "counts", "response", "resolution", "stage", "annotator",
            "author", "created_at", "updated_at",
        ]  # fmt: skip

    def get_frames(self, finding) -> list[int] | None:
        if finding.frame_start is None:
            return None
        return [finding.frame_start, finding.frame_end]

    def get_author(self, finding) -> str | None:
        return finding.author.username if finding.author else None

    def get_annotator(self, finding) -> str | None:
        return finding.annotator.username if finding.annotator else None


class FixSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.CharField()
    annotation = serializers.IntegerField(source="annotation_id", allow_null=True)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField()


class AuditSerializer(serializers.ModelSerializer):
    stage = serializers.SerializerMethodField()
    auditor = serializers.SerializerMethodField()
    findings = FindingSerializer(many=True, read_only=True)
    fixes = FixSerializer(many=True, read_only=True)

    class Meta:
        model = Audit
        fields = [
            "id", "task", "project", "stage", "kind", "status", "decision", "fixed", "attempt",
            "sampled", "current", "auditor", "annotation_count", "note", "findings", "fixes",
            "created_at", "completed_at",
        ]  # fmt: skip

    def get_stage(self, audit) -> str | None:
        return audit.stage_key or None

    def get_auditor(self, audit) -> str | None:
        return audit.auditor.username if audit.auditor else None


class AuditInputSerializer(serializers.Serializer):
    task = serializers.IntegerField(min_value=1)
    stage = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64)
    kind = serializers.ChoiceField(choices=Audit.Kind.choices)


class FindingInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=AuditFinding.Type.choices)
    category = serializers.ChoiceField(
        choices=AuditFinding.Category.choices, required=False, default="other"
    )
    annotation = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    attribute = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    sample = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    frames = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        required=False,
        allow_null=True,
        min_length=2,
        max_length=2,
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class ResponseInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class SettleInputSerializer(serializers.Serializer):
    uphold = serializers.BooleanField(
        help_text="true keeps the finding (an error then counts), false withdraws it."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class CompleteInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=Audit.Decision.choices[1:], required=False, default="accept"
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


def _int_param(request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    number = whole_number(value)
    if number is None:
        raise serializers.ValidationError({name: ["Must be an id."]})
    return number


class AuditListApi(ListAPIView):
    """Audits you may see (reviewers and managers: their projects'; annotators: those of
    their own work). POST opens one (reviewers and managers, never on their own work)."""

    serializer_class = AuditSerializer
    pagination_class = Pagination

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int),
            OpenApiParameter("task", int),
            OpenApiParameter("status", str, enum=Audit.Status.values),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        state = self.request.query_params.get("status") or None
        if state is not None and state not in Audit.Status.values:
            raise serializers.ValidationError({"status": ["open or completed."]})
        return audit_selectors.audit_list(
            user=self.request.user,
            project=_int_param(self.request, "project"),
            task=_int_param(self.request, "task"),
            status=state,
        )

    @extend_schema(request=AuditInputSerializer, responses={201: AuditSerializer})
    def post(self, request):
        serializer = AuditInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = task_get_for_user(user=request.user, task_id=data["task"])
        audit = services.audit_create(
            actor=request.user, task=task, stage=data.get("stage") or None, kind=data["kind"]
        )
        audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit.pk)
        return Response(AuditSerializer(audit).data, status=status.HTTP_201_CREATED)


class AuditNextApi(GenericAPIView):
    """Audit next: open an audit of the next delivered unit drawn for audit; 204 when none."""

    serializer_class = AuditSerializer

    @extend_schema(request=None, responses={201: AuditSerializer, 204: None})
    def post(self, request):
        audit = services.audit_claim_next(actor=request.user)
        if audit is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit.pk)
        return Response(AuditSerializer(audit).data, status=status.HTTP_201_CREATED)


class AuditDetailApi(GenericAPIView):
    serializer_class = AuditSerializer

    def get(self, request, audit_id: int):
        audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit_id)
        return Response(AuditSerializer(audit).data)


class FindingListApi(GenericAPIView):
    serializer_class = FindingSerializer

    @extend_schema(request=FindingInputSerializer, responses={201: FindingSerializer})
    def post(self, request, audit_id: int):
        audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit_id)
        services.require_auditor(request.user, audit, "records findings")
        serializer = FindingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        finding = services.finding_add(actor=request.user, audit=audit, **serializer.validated_data)
        return Response(FindingSerializer(finding).data, status=status.HTTP_201_CREATED)


class FindingActionApi(GenericAPIView):
    """``accept`` / ``dispute`` (the annotator of the work, or a manager) and ``settle``
    (the auditor, a disputed finding)."""

    serializer_class = FindingSerializer
    action_name = ""

    def _finding(self, request, audit_id: int, finding_id: int) -> AuditFinding:
        audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit_id)
        return get_object_or_404(AuditFinding, pk=finding_id, audit=audit)

    def post(self, request, audit_id: int, finding_id: int):
        finding = self._finding(request, audit_id, finding_id)
        if self.action_name == "settle":
            services.require_auditor(request.user, finding.audit, "settles disputes")
            serializer = SettleInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            finding = services.finding_settle(
                actor=request.user, finding=finding, **serializer.validated_data
            )
        else:
            serializer = ResponseInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            finding = services.finding_respond(
                actor=request.user,
                finding=finding,
                response=self.action_name,
                **serializer.validated_data,
            )
        return Response(FindingSerializer(finding).data)


class FindingAcceptApi(FindingActionApi):
    action_name = "accept"

    @extend_schema(request=ResponseInputSerializer, responses=FindingSerializer)
    def post(self, request, audit_id: int, finding_id: int):
        return super().post(request, audit_id, finding_id)


class FindingDisputeApi(FindingActionApi):
    action_name = "dispute"

    @extend_schema(request=ResponseInputSerializer, responses=FindingSerializer)
    def post(self, request, audit_id: int, finding_id: int):
        return super().post(request, audit_id, finding_id)


class FindingSettleApi(FindingActionApi):
    action_name = "settle"

    @extend_schema(request=SettleInputSerializer, responses=FindingSerializer)
    def post(self, request, audit_id: int, finding_id: int):
        return super().post(request, audit_id, finding_id)


class AuditCompleteApi(GenericAPIView):
    serializer_class = AuditSerializer

    @extend_schema(request=CompleteInputSerializer, responses=AuditSerializer)
    def post(self, request, audit_id: int):
        audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit_id)
        services.require_auditor(request.user, audit, "completes the audit")
        serializer = CompleteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.audit_complete(actor=request.user, audit=audit, **serializer.validated_data)
        audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit.pk)
        return Response(AuditSerializer(audit).data)
