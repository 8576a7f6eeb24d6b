"""JSON API for pre-labels: import a file of existing labels into a project's tasks (a job),
follow the import, and accept or delete a stage's pre-labels (tasks/services/prelabels.py)."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core.access import Action
from core.parsers import StrictJSONParser
from projects.selectors import project_get_for_user

from . import selectors
from .api import AnnotationSerializer
from .services.prelabels import (
    FORMATS,
    prelabel_import_get,
    prelabel_import_list,
    prelabel_import_start,
    prelabels_resolve,
)


class PrelabelImportSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=sorted(FORMATS))
    stage = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="The stage that gets the pre-labels; by default each annotation's own "
        "(JSONL and LeRobot); required for COCO.",
    )
    task = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Import everything into this task (samples matched by name); by default "
        "each annotation goes to the task the file names (unique id, else id).",
    )
    source_detail = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Where the labels come from, e.g. 'model yolo-v8 2026-11'.",
    )


class PrelabelImportStateSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "started", "finished", "failed"])
    format = serializers.CharField()
    stage = serializers.CharField(allow_null=True)
    task = serializers.IntegerField(allow_null=True)
    source_detail = serializers.CharField()
    file = serializers.CharField()
    created_at = serializers.CharField()
    summary = serializers.JSONField(
        allow_null=True,
        help_text="created, skipped, tasks, reasons {reason: count}, unknown_labels "
        "{label: count}, examples (the first skipped ones, with where they are in the file)",
    )
    error = serializers.CharField()


class PrelabelResolveSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["accept", "delete"])
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        allow_null=True,
        default=None,
        help_text="The pre-labels to accept or delete; all of the stage's when left out.",
    )


class PrelabelImportListApi(GenericAPIView):
    serializer_class = PrelabelImportStateSerializer
    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]

    @extend_schema(responses=PrelabelImportStateSerializer(many=True))
    def get(self, request, project_id: int):
        """The project's latest pre-label imports, newest first."""
        project = project_get_for_user(user=request.user, project_id=project_id)
        return Response(prelabel_import_list(project=project))

    @extend_schema(
        request={"multipart/form-data": PrelabelImportSerializer},
        responses={202: PrelabelImportStateSerializer},
    )
    def post(self, request, project_id: int):
        """Upload existing labels (our JSONL export, COCO boxes, the LeRobot export's
        meta/stagecraft_annotations.jsonl or the dataset zipped) to import as pre-labels."""
        project = project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        serializer = PrelabelImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = prelabel_import_start(
            actor=request.user,
            project=project,
            upload=data["file"],
            format=data["format"],
            stage=data["stage"],
            task_id=data["task"],
            detail=data["source_detail"],
        )
        return Response(record, status=status.HTTP_202_ACCEPTED)


class PrelabelImportDetailApi(GenericAPIView):
    serializer_class = PrelabelImportStateSerializer

    def get(self, request, project_id: int, import_id: str):
        """One import: its status, and its summary once finished (or its error)."""
        project = project_get_for_user(user=request.user, project_id=project_id)
        record = prelabel_import_get(project=project, import_id=import_id)
        if record is None:
            raise Http404("No such import.")
        return Response(record)


class StagePrelabelsApi(GenericAPIView):
    serializer_class = PrelabelResolveSerializer

    @extend_schema(request=PrelabelResolveSerializer, responses=AnnotationSerializer(many=True))
    def post(self, request, task_id: int, key: str):
        """Accept (they become yours) or delete the stage's pre-labels: ``ids``, or all."""
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        serializer = PrelabelResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = prelabels_resolve(
            actor=request.user, task=task, stage=key, **serializer.validated_data
        )
        result["annotations"] = AnnotationSerializer(result["annotations"], many=True).data
        return Response(result)
