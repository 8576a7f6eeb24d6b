"""JSON API of bucket connections (managers of the project only). The secret is write-only:
it is sent on create or change and never answered (``has_secret`` says whether one is set)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.access import Action
from core.api import PatchSerializer
from projects import selectors as project_selectors
from projects.models import DatasetFormat

from . import selectors, services
from .models import BucketConnection, ConnectionKind, Direction


class ConnectionSerializer(serializers.ModelSerializer):
    has_secret = serializers.BooleanField(read_only=True)
    location = serializers.CharField(read_only=True)

    class Meta:
        model = BucketConnection
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "direction",
            "bucket",
            "prefix",
            "location",
            "endpoint_url",
            "region",
            "access_key_id",
            "has_secret",
            "format",
            "sync_status",
            "sync_started_at",
            "sync_finished_at",
            "sync_counts",
            "sync_error",
            "sync_job_id",
            "created_at",
            "updated_at",
        ]


WRITE_ONLY_HELP = "Write-only: stored encrypted, never answered (see has_secret)."


class ConnectionCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=ConnectionKind.choices, default=ConnectionKind.S3)
    direction = serializers.ChoiceField(choices=Direction.choices)
    bucket = serializers.CharField(max_length=255)
    prefix = serializers.CharField(max_length=1024, required=False, allow_blank=True, default="")
    endpoint_url = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )
    region = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    access_key_id = serializers.CharField(
        max_length=256, required=False, allow_blank=True, default=""
    )
    secret_access_key = serializers.CharField(
        max_length=1024,
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        trim_whitespace=False,
        help_text=WRITE_ONLY_HELP,
    )
    format = serializers.ChoiceField(
        choices=[("", "Tell from the files"), *DatasetFormat.choices],
        required=False,
        allow_blank=True,
        default="",
    )


class ConnectionUpdateSerializer(PatchSerializer):
    name = serializers.CharField(max_length=200, required=False)
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    bucket = serializers.CharField(max_length=255, required=False)
    prefix = serializers.CharField(max_length=1024, required=False, allow_blank=True)
    endpoint_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    region = serializers.CharField(max_length=64, required=False, allow_blank=True)
    access_key_id = serializers.CharField(max_length=256, required=False, allow_blank=True)
    secret_access_key = serializers.CharField(
        max_length=1024,
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        help_text=f"{WRITE_ONLY_HELP} Empty or left out: the stored one is kept.",
    )
    clear_secret = serializers.BooleanField(
        required=False, help_text="Remove the stored secret (a public bucket)."
    )
    format = serializers.ChoiceField(
        choices=[("", "Tell from the files"), *DatasetFormat.choices],
        required=False,
        allow_blank=True,
    )

    class Meta:
        resource = ConnectionSerializer
        read_only_hints = {
            "kind": "make another connection for another kind of storage",
            "sync_status": "POST …/sync/ starts a sync",
        }


class ConnectionListApi(ListAPIView):
    serializer_class = ConnectionSerializer
    pagination_class = None

    def get_queryset(self):
        project = project_selectors.project_get_for_user(
            user=self.request.user, project_id=self.kwargs["project_id"], action=Action.CHANGE
        )
        return selectors.connection_list(project=project)

    @extend_schema(request=ConnectionCreateSerializer, responses={201: ConnectionSerializer})
    def post(self, request, project_id: int):
        """Connect a bucket (and prefix) to the project, as a source or an export target."""
        project = project_selectors.project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        serializer = ConnectionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connection = services.connection_create(
            actor=request.user, project=project, **serializer.validated_data
        )
        return Response(ConnectionSerializer(connection).data, status=status.HTTP_201_CREATED)


class ConnectionDetailApi(GenericAPIView):
    serializer_class = ConnectionSerializer

    def get(self, request, connection_id: int):
        connection = selectors.connection_get_for_user(
            user=request.user, connection_id=connection_id
        )
        return Response(ConnectionSerializer(connection).data)

    @extend_schema(request=ConnectionUpdateSerializer, responses=ConnectionSerializer)
    def patch(self, request, connection_id: int):
        connection = selectors.connection_get_for_user(
            user=request.user, connection_id=connection_id
        )
        serializer = ConnectionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connection = services.connection_update(
            actor=request.user, connection=connection, **serializer.validated_data
        )
        return Response(ConnectionSerializer(connection).data)

    @extend_schema(responses={204: None})
    def delete(self, request, connection_id: int):
        """Disconnect; the datasets it imported and the bucket's objects stay."""
        connection = selectors.connection_get_for_user(
            user=request.user, connection_id=connection_id
        )
        services.connection_delete(actor=request.user, connection=connection)
        return Response(status=status.HTTP_204_NO_CONTENT)


TestResultSerializer = inline_serializer(
    "ConnectionTestResult",
    {
        "ok": serializers.BooleanField(),
        "message": serializers.CharField(),
        "example": serializers.CharField(allow_null=True),
    },
)


class ConnectionTestApi(GenericAPIView):
    serializer_class = ConnectionSerializer

    @extend_schema(request=None, responses=TestResultSerializer)
    def post(self, request, connection_id: int):
        """List one key under the prefix: ``ok`` and a message naming what is wrong."""
        connection = selectors.connection_get_for_user(
            user=request.user, connection_id=connection_id
        )
        return Response(services.connection_test(actor=request.user, connection=connection))


class ConnectionEpisodesApi(GenericAPIView):
    serializer_class = ConnectionSerializer

    @extend_schema(
        responses=inline_serializer(
            "ConnectionEpisodes",
            {
                "episodes": inline_serializer(
                    "ConnectionEpisode",
                    {
                        "key": serializers.CharField(),
                        "kind": serializers.CharField(),
                        "objects": serializers.IntegerField(),
                        "size": serializers.IntegerField(),
                        "etag": serializers.CharField(),
                        "new": serializers.BooleanField(),
                    },
                    many=True,
                ),
                "new": serializers.IntegerField(),
                "ignored": serializers.IntegerField(),
            },
        )
    )
    def get(self, request, connection_id: int):
        """A source's episodes under its prefix (LeRobot datasets, Zarr stores, HDF5 files,
        images), each marked new or imported; ``ignored`` counts what no importer takes."""
        connection = selectors.connection_get_for_user(
            user=request.user, connection_id=connection_id
        )
        return Response(services.connection_episodes(actor=request.user, connection=connection))


class SyncSerializer(PatchSerializer):
    keys = serializers.ListField(
        child=serializers.CharField(max_length=1024, allow_blank=True),
        required=False,
        max_length=10_000,
        help_text="Import only these episodes (keys from …/episodes/); default: every new one.",
    )


class ConnectionSyncApi(GenericAPIView):
    serializer_class = ConnectionSerializer

    @extend_schema(
        request=SyncSerializer,
        responses={
            202: inline_serializer(
                "ConnectionSyncStarted",
                {"job_id": serializers.CharField(), "connection": ConnectionSerializer()},
            )
        },
    )
    def post(self, request, connection_id: int):
        """Sync now: a source imports its new (or the picked) episodes in a job on
        ``imports``; a target receives the project's newest finished export. 409 while a
        sync of the connection is queued or running."""
        connection = selectors.connection_get_for_user(
            user=request.user, connection_id=connection_id
        )
        serializer = SyncSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job_id = services.connection_sync_start(
            actor=request.user, connection=connection, keys=serializer.validated_data.get("keys")
        )
        connection.refresh_from_db()
        return Response(
            {"job_id": job_id, "connection": ConnectionSerializer(connection).data},
            status=status.HTTP_202_ACCEPTED,
        )
