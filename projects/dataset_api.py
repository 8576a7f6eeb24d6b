"""JSON API for datasets and samples, and the frame and series endpoints."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core.access import Action
from core.exceptions import ApplicationError
from core.parsers import StrictJSONParser

from . import dataset_selectors, selectors
from .data_views import cached_image
from .dataset_services import check_import_path, dataset_delete, dataset_import_start
from .formats import DataError
from .models import Dataset, DatasetFormat, Sample


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = [
            "id",
            "project",
            "name",
            "description",
            "format",
            "status",
            "error",
            "num_samples",
            "total_frames",
            "duration_seconds",
            "size_bytes",
            "checksum",
            "job_id",
            "created_at",
            "imported_at",
        ]


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    format = serializers.ChoiceField(choices=DatasetFormat.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    path = serializers.CharField(required=False, max_length=1000)
    files = serializers.ListField(child=serializers.FileField(), required=False)
    fps = serializers.FloatField(required=False, min_value=0.1, max_value=10_000)
    swap_rb = serializers.BooleanField(required=False)
    flip_cameras = serializers.BooleanField(
        required=False, help_text="robomimic/robosuite: turn upside-down camera images round."
    )


class SampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sample
        fields = [
            "id",
            "dataset",
            "index",
            "name",
            "kind",
            "num_frames",
            "fps",
            "cameras",
            "arrays",
            "metadata",
        ]


class SampleListSerializer(SampleSerializer):
    """A sample in a list: metadata and array descriptions with their large values (over
    ``LIST_VALUE_MAX_BYTES``, e.g. a robosuite demo's ``model_file``) replaced by
    ``{"omitted": true, "bytes": n}``; ``GET /samples/{id}/`` carries them whole."""

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["metadata"] = dataset_selectors.compact_value(data["metadata"])
        data["arrays"] = {
            name: dataset_selectors.compact_value(info) for name, info in data["arrays"].items()
        }
        return data


class DatasetListApi(ListAPIView):
    serializer_class = DatasetSerializer
    parser_classes = [StrictJSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        project = selectors.project_get_for_user(
            user=self.request.user, project_id=self.kwargs["project_id"]
        )
        return dataset_selectors.dataset_list(project=project)

    @extend_schema(
        request={
            "application/json": DatasetCreateSerializer,
            "multipart/form-data": DatasetCreateSerializer,
        },
        responses={202: DatasetSerializer},
    )
    def post(self, request, project_id: int):
        """Import files (multipart ``files``) or a server folder (``path``) as a dataset."""
        project = selectors.project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        serializer = DatasetCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        uploads = request.FILES.getlist("files") if hasattr(request, "FILES") else []
        path = check_import_path(data["path"]) if data.get("path") else None
        options = {k: data[k] for k in ("fps", "swap_rb", "flip_cameras") if k in data}
        dataset = dataset_import_start(
            actor=request.user,
            project=project,
            name=data["name"],
            format=data["format"],
            description=data["description"],
            source_path=path,
            uploads=uploads,
            options=options,
        )
        dataset.refresh_from_db()
        body = {"dataset": DatasetSerializer(dataset).data, "job_id": dataset.job_id}
        body["status"] = dataset.status
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DatasetDetailApi(GenericAPIView):
    serializer_class = DatasetSerializer

    def get(self, request, dataset_id: int):
        dataset = dataset_selectors.dataset_get_for_user(user=request.user, dataset_id=dataset_id)
        return Response(DatasetSerializer(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request, dataset_id: int):
        """Delete a dataset, its samples and files; refused (400) while tasks use it."""
        dataset = dataset_selectors.dataset_get_for_user(
            user=request.user, dataset_id=dataset_id, action=Action.CHANGE
        )
        dataset_delete(actor=request.user, dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SampleListApi(ListAPIView):
    """A dataset's samples, paginated; large metadata values are replaced by a marker."""

    serializer_class = SampleListSerializer

    def get_queryset(self):
        dataset = dataset_selectors.dataset_get_for_user(
            user=self.request.user, dataset_id=self.kwargs["dataset_id"]
        )
        return dataset_selectors.sample_list(dataset=dataset)


class SampleDetailApi(GenericAPIView):
    serializer_class = SampleSerializer

    def get(self, request, sample_id: int):
        """One sample with its whole metadata (``model_file``, ``env_args``…) and arrays."""
        sample = dataset_selectors.sample_get_for_user(user=request.user, sample_id=sample_id)
        return Response(SampleSerializer(sample).data)


def _int_param(request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApplicationError(f"{name} must be a whole number.", field=name) from None
    if not low <= value <= high:
        raise ApplicationError(f"{name} must be between {low} and {high}.", field=name)
    return value


class SampleFrameApi(GenericAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("encoding", enum=["jpeg", "png"], description="Default jpeg."),
            OpenApiParameter("size", int, description="Shrink to fit this many pixels."),
        ],
        responses={
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request, sample_id: int, camera: str, index: int):
        """One frame of one camera as an image, with an ETag (304 when unchanged)."""
        sample = dataset_selectors.sample_get_for_user(user=request.user, sample_id=sample_id)
        encoding = request.query_params.get("encoding", "jpeg")
        size = _int_param(request, "size", None, 16, 4096)
        etag = dataset_selectors.frame_etag(sample, camera, index, encoding, size)
        try:
            return cached_image(
                request,
                etag,
                lambda: dataset_selectors.sample_frame(
                    sample=sample, camera=camera, index=index, encoding=encoding, max_size=size
                ),
                dataset_selectors.ENCODINGS.get(encoding, ("", ""))[1],
                csp="default-src 'none'",
            )
        except DataError as exc:
            return Response({"detail": exc.message}, status=422)


class SampleSeriesApi(GenericAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("max_points", int, description="Thin long episodes."),
            OpenApiParameter(
                "key",
                str,
                many=True,
                description="Only these series (repeatable); N-D ones are sent only when named.",
            ),
            OpenApiParameter("start", int, description="First frame (inclusive)."),
            OpenApiParameter("end", int, description="Last frame (inclusive)."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, sample_id: int):
        """The sample's arrays for plotting: names, roles and values per frame.

        By default the plottable series (one value or a small vector per frame) with their
        values, and under ``omitted`` only a description (role, shape, item_shape, dtype)
        of N-D ones (depth images…). ``?key=obs/depth`` (repeatable) sends exactly the
        named series, N-D ones flattened per frame; too many values answer 400 saying
        how many frames fit (narrow with ``start``/``end`` or ``max_points``).
        """
        sample = dataset_selectors.sample_get_for_user(user=request.user, sample_id=sample_id)
        max_points = _int_param(request, "max_points", None, 2, 100_000)
        last = max(0, sample.num_frames - 1)
        start = _int_param(request, "start", None, 0, last)
        end = _int_param(request, "end", None, 0, last)
        keys = [k for k in request.query_params.getlist("key") if k] or None
        try:
            return Response(
                dataset_selectors.sample_series(
                    sample=sample, max_points=max_points, keys=keys, start=start, end=end
                )
            )
        except DataError as exc:
            return Response({"detail": exc.message}, status=422)
