"""JSON API for projects and members: thin translation onto services and selectors."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.access import Action, can_create_project
from core.api import PatchSerializer

from . import selectors, services
from .models import Assignment, Delivery, Membership, Project, Role


class ProjectSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(max_length=70, required=False)
    active_blueprint = serializers.SerializerMethodField()
    assignment = serializers.SerializerMethodField(
        help_text="pull: people press Start next task; push: new ready work is reserved "
        "for the least loaded eligible people automatically."
    )

    robot_type = serializers.SerializerMethodField(
        help_text="What LeRobot exports name the robot (info.json robot_type); empty: unset."
    )

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "delivery",
            "assignment",
            "robot_type",
            "active_blueprint",
        ]

    def get_assignment(self, project: Project) -> str:
        return selectors.assignment_mode(project)

    def get_robot_type(self, project: Project) -> str:
        return selectors.robot_type(project)

    def get_active_blueprint(self, project: Project) -> dict | None:
        from blueprints.selectors import active_blueprint

        blueprint = active_blueprint(project=project)
        if blueprint is None:
            return None
        return {"id": blueprint.pk, "name": blueprint.name, "version": blueprint.version}


class ProjectUpdateSerializer(PatchSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    delivery = serializers.ChoiceField(choices=Delivery.choices, required=False)
    assignment = serializers.ChoiceField(choices=Assignment.choices, required=False)
    robot_type = serializers.CharField(max_length=100, required=False, allow_blank=True)

    class Meta:
        resource = ProjectSerializer


class MembershipSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "role", "skills", "capacity"]


class MembershipInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)
    skills = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    capacity = serializers.IntegerField(min_value=0, max_value=10_000, required=False)


class ProjectListApi(ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return selectors.project_list_for_user(user=self.request.user)

    def post(self, request):
        if not can_create_project(request.user):
            raise PermissionDenied("You may not create projects.")
        serializer = ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = services.project_create(
            actor=request.user,
            name=data["name"],
            slug=data.get("slug"),
            description=data.get("description", ""),
            delivery=data.get("delivery", Delivery.TASK),
        )
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(GenericAPIView):
    serializer_class = ProjectSerializer

    def get(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(project).data)

    @extend_schema(request=ProjectUpdateSerializer, responses=ProjectSerializer)
    def patch(self, request, project_id: int):
        project = selectors.project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        serializer = ProjectUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.project_update(
            actor=request.user, project=project, **serializer.validated_data
        )
        return Response(ProjectSerializer(project).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int):
        """Delete a project that holds no tasks and no datasets (400 otherwise)."""
        project = selectors.project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        services.project_delete(actor=request.user, project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListApi(ListAPIView):
    serializer_class = MembershipSerializer
    pagination_class = None

    def get_queryset(self):
        project = selectors.project_get_for_user(
            user=self.request.user, project_id=self.kwargs["project_id"]
        )
        return selectors.membership_list(project=project)

    @extend_schema(request=MembershipInputSerializer, responses=MembershipSerializer)
    def post(self, request, project_id: int):
        """Give a user a role (201); posting a role they hold updates skills/capacity (200)."""
        project = selectors.project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        serializer = MembershipInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership, created = services.membership_add(
            actor=request.user, project=project, **serializer.validated_data
        )
        return Response(
            MembershipSerializer(membership).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MemberDetailApi(GenericAPIView):
    serializer_class = MembershipSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "role", enum=Role.values, description="Remove only this role (default: all)."
            )
        ],
        responses={204: None},
    )
    def delete(self, request, project_id: int, user_id: int):
        project = selectors.project_get_for_user(
            user=request.user, project_id=project_id, action=Action.CHANGE
        )
        user = get_object_or_404(get_user_model(), pk=user_id)
        removed = services.membership_remove_user(
            actor=request.user, project=project, user=user, role=request.query_params.get("role")
        )
        if not removed:
            return Response({"detail": "That user is not a member."}, status=404)
        return Response(status=status.HTTP_204_NO_CONTENT)
