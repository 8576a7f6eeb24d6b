"""JSON API for exports (API.md)."""

from django.http import FileResponse, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.access import Action
from projects.selectors import project_get_for_user

from . import services
from .models import Export, ExportFormat


class ExportSerializer(serializers.ModelSerializer):
    requested_by = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id",
            "project",
            "version",
            "format",
            "status",
            "progress",
            "job_id",
            "selection",
            "options",
            "manifest",
            "error",
            "size_bytes",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_requested_by(self, export) -> str | None:
        return export.requested_by.username if export.requested_by else None


class ExportSummarySerializer(ExportSerializer):
    """A list's row: the manifest's counts instead of the manifest (its task ids and file
    checksums are in ``GET /exports/{id}/``), so a list does not grow with export sizes."""

    counts = serializers.DictField(read_only=True)

    class Meta(ExportSerializer.Meta):
        fields = [f for f in ExportSerializer.Meta.fields if f != "manifest"] + ["counts"]


class ExportInputSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    filter = serializers.DictField(required=False)
    ids = serializers.ListField(child=serializers.IntegerField(), required=False)
    incremental = serializers.BooleanField(required=False)
    submit = serializers.BooleanField(required=False)
    clean = serializers.BooleanField(required=False)
    validate_output = serializers.BooleanField(required=False, source="validate")
    include_unfinished = serializers.BooleanField(required=False)
    task_from = serializers.CharField(required=False, max_length=100)
    video = serializers.BooleanField(required=False)
    robot_type = serializers.CharField(required=False, max_length=100)
    zip = serializers.BooleanField(required=False)
    compress = serializers.ChoiceField(choices=["none", "jpeg"], required=False)


class ExportListApi(ListAPIView):
    serializer_class = ExportSummarySerializer

    def get_queryset(self):
        return services.export_list_for_user(user=self.request.user)

    @extend_schema(request=ExportInputSerializer, responses={202: ExportSerializer})
    def post(self, request):
        """Start an export (202); an identical one already under way is answered (200)."""
        serializer = ExportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        project = project_get_for_user(
            user=request.user, project_id=data.pop("project"), action=Action.CHANGE
        )
        fmt = data.pop("format")
        selection = {k: data.pop(k) for k in ("filter", "ids") if k in data}
        export, created = services.export_start(
            actor=request.user, project=project, format=fmt, options=data, **selection
        )
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(ExportSerializer(export).data, status=code)


class ExportDetailApi(GenericAPIView):
    serializer_class = ExportSerializer

    def get(self, request, export_id: int):
        return Response(
            ExportSerializer(
                services.export_get_for_user(user=request.user, export_id=export_id)
            ).data
        )


class ExportCancelApi(GenericAPIView):
    serializer_class = ExportSerializer

    @extend_schema(request=None)
    def post(self, request, export_id: int):
        export = services.export_get_for_user(user=request.user, export_id=export_id)
        return Response(
            ExportSerializer(services.export_cancel(actor=request.user, export=export)).data
        )


class ExportDownloadApi(GenericAPIView):
    serializer_class = ExportSerializer

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="Object storage: a short-lived signed URL."),
        }
    )
    def get(self, request, export_id: int):
        """The JSONL file, or a zip archive of the export version's folder; on object storage
        a redirect to a short-lived signed URL of it."""
        export = services.export_get_for_user(user=request.user, export_id=export_id)
        download = services.export_download(actor=request.user, export=export)
        if download.url:
            return HttpResponseRedirect(download.url)
        return FileResponse(download.open(), as_attachment=True, filename=download.filename)


class QueueListApi(GenericAPIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        """Per queue: paused, workers, counts by state, jobs finished per minute (admins)."""
        from django.http import Http404

        from core.access import is_admin

        from . import control

        if not is_admin(request.user):
            raise Http404("No such page.")
        return Response(control.queue_overview())


class QueueActionApi(GenericAPIView):
    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, name: str, action: str):
        """pause, resume, empty, clean (older than 24 h) or retry-failed (≤ 1,000 per call)."""
        from django.http import Http404

        from core.access import is_admin

        from . import control

        if not is_admin(request.user):
            raise Http404("No such page.")
        return Response(control.queue_action(actor=request.user, name=name, action=action))
