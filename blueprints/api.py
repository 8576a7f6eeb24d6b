"""JSON API for blueprints: documents as JSON or YAML bodies; errors carry their paths."""

import yaml
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from core.access import Action
from core.parsers import UNSAFE_TEXT, StrictJSONParser, has_unsafe_text
from projects.selectors import project_get_for_user

from . import selectors, services
from .models import Blueprint


class YAMLParser(BaseParser):
    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = yaml.safe_load(stream.read().decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
            raise ParseError(f"YAML parse error: {exc}") from exc
        if has_unsafe_text(data):
            raise ParseError(UNSAFE_TEXT)
        return data


class XYAMLParser(YAMLParser):
    media_type = "application/x-yaml"


class BlueprintSerializer(serializers.ModelSerializer):
    class Meta:
        model = Blueprint
        fields = ["id", "name", "version", "active", "definition", "created_at", "updated_at"]


class BlueprintInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    definition = serializers.JSONField()
    new_version = serializers.BooleanField(required=False, default=False)


class BlueprintListApi(ListAPIView):
    serializer_class = BlueprintSerializer
    pagination_class = None
    parser_classes = [StrictJSONParser, YAMLParser, XYAMLParser]

    def get_queryset(self):
        project = project_get_for_user(user=self.request.user, project_id=self.kwargs["project_id"])
        return selectors.blueprint_list(project=project).order_by("name", "-version")

    @extend_schema(request=BlueprintInputSerializer, responses={201: BlueprintSerializer})
    def post(self, request, project_id: int):
        """Save a document (JSON, or YAML with Content-Type application/yaml).

        Answers the stored version: 201 when it changed, 200 when the document was the same.
        """
        project = project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        if not isinstance(request.data, dict):
            raise ParseError("The body must be an object with “definition” (and “name”).")
        serializer = BlueprintInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        blueprint, changed = services.blueprint_save(
            actor=request.user,
            project=project,
            definition=data["definition"],
            name=data.get("name"),
            new_version=data["new_version"],
        )
        code = status.HTTP_201_CREATED if changed else status.HTTP_200_OK
        return Response(BlueprintSerializer(blueprint).data, status=code)


class BlueprintDetailApi(GenericAPIView):
    serializer_class = BlueprintSerializer

    def get(self, request, blueprint_id: int):
        blueprint = selectors.blueprint_get_for_user(user=request.user, blueprint_id=blueprint_id)
        return Response(BlueprintSerializer(blueprint).data)


class BlueprintActivateApi(GenericAPIView):
    serializer_class = BlueprintSerializer

    @extend_schema(request=None, responses=BlueprintSerializer)
    def post(self, request, project_id: int, name: str):
        """Make the newest version of the named blueprint the project's active one."""
        project = project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        blueprint = services.blueprint_activate_newest(
            actor=request.user, project=project, name=name
        )
        return Response(BlueprintSerializer(blueprint).data)
