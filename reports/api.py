"""``GET /api/v1/reports/{personal|team|project}/``: the figures of the report pages as JSON
(``reports.selectors``; its docstring says what each figure counts).

The period is ``from`` and ``to`` (dates, inclusive; ``to`` defaults to today, ``from`` to 30
days before it) or ``days`` (7, 30 or 90 days ending today). A bad date, an unknown user or a
malformed project id answers 400 with a message per field; a project the caller may not see
404, a report they may not read 403 (DESIGN.md §8: everyone their own work, managers their
projects' people and progress, administrators everything).
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import Action
from core.exceptions import ApplicationError
from core.parsers import whole_number
from projects.selectors import project_get_for_user

from . import selectors
from .periods import parse_period

PERIOD_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive)."),
    OpenApiParameter(
        "to", OpenApiTypes.DATE, description="Last day (inclusive); today if left out."
    ),
    OpenApiParameter("days", int, enum=[7, 30, 90], description="The last 7, 30 or 90 days."),
]


class ReportActivitySerializer(serializers.Serializer):
    """What one person (or everyone) did: see ``reports.selectors`` for each figure."""

    started = serializers.IntegerField(help_text="Annotate runs started.")
    submitted = serializers.IntegerField(help_text="Annotate submissions (rework again).")
    completed = serializers.IntegerField(help_text="Annotate runs whose work stands completed.")
    active_seconds = serializers.FloatField(
        help_text="Active time of the runs last submitted in the period."
    )
    rework = serializers.IntegerField(help_text="Their runs sent back by a review or audit.")
    reviews = serializers.IntegerField(help_text="Review decisions made.")
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    audits = serializers.IntegerField(help_text="Audits completed.")


class ReportDaySerializer(ReportActivitySerializer):
    day = serializers.DateField()


class ReportTotalsSerializer(ReportActivitySerializer):
    median_seconds = serializers.FloatField(
        allow_null=True, help_text="Median active seconds per run submitted in the period."
    )


class ReportQualityCountsSerializer(serializers.Serializer):
    reviewed = serializers.IntegerField()
    first_pass = serializers.IntegerField()
    audited_annotations = serializers.IntegerField()
    errors = serializers.IntegerField()
    missing = serializers.IntegerField()


class ReportQualitySerializer(serializers.Serializer):
    first_pass_rate = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    quality_counts = ReportQualityCountsSerializer()


class ReportProjectQualitySerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    project = serializers.CharField()
    slug = serializers.CharField()
    first_pass_rate = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)


class PersonalReportSerializer(serializers.Serializer):
    user = serializers.CharField()
    user_id = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()
    totals = ReportTotalsSerializer()
    quality = ReportQualitySerializer(help_text="Over all the projects of the report.")
    quality_by_project = ReportProjectQualitySerializer(many=True)
    by_day = ReportDaySerializer(many=True, help_text="Every day of the period, oldest first.")


class ReportPersonRowSerializer(ReportTotalsSerializer):
    username = serializers.CharField()
    user_id = serializers.IntegerField()
    first_pass_rate = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    quality_counts = ReportQualityCountsSerializer()


class ReportTeamTotalSerializer(ReportTotalsSerializer):
    first_pass_rate = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    quality_counts = ReportQualityCountsSerializer()


class ReportProjectRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class TeamReportSerializer(serializers.Serializer):
    projects = ReportProjectRefSerializer(many=True)
    start = serializers.DateField()
    end = serializers.DateField()
    sort = serializers.CharField()
    descending = serializers.BooleanField()
    people = ReportPersonRowSerializer(many=True)
    total = ReportTeamTotalSerializer()
    by_day = ReportDaySerializer(many=True)


class ReportProjectDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    tasks_created = serializers.IntegerField()
    tasks_completed = serializers.IntegerField(
        help_text="Tasks whose last stage run completed that day (and that are done now)."
    )
    runs_completed = serializers.IntegerField(help_text="Annotate, consensus and review runs.")
    tasks = serializers.IntegerField(help_text="Tasks created by the end of the day.")
    tasks_done = serializers.IntegerField(help_text="Of those, done by the end of the day.")
    share_done = serializers.FloatField(allow_null=True)


class ReportProjectTotalsSerializer(serializers.Serializer):
    tasks_created = serializers.IntegerField()
    tasks_completed = serializers.IntegerField()
    runs_completed = serializers.IntegerField()


class ProjectReportSerializer(serializers.Serializer):
    project = ReportProjectRefSerializer()
    start = serializers.DateField()
    end = serializers.DateField()
    tasks_before = serializers.IntegerField(help_text="Tasks created before the period.")
    done_before = serializers.IntegerField(help_text="Tasks done before the period.")
    totals = ReportProjectTotalsSerializer()
    by_day = ReportProjectDaySerializer(many=True)


def _params(request) -> dict[str, str]:
    """The query without empty values (a form's blank field means no filter)."""
    return {key: value for key, value in request.query_params.items() if value != ""}


def _project(request, params: dict[str, str], *, required: bool, action: Action):
    raw = params.get("project")
    if raw is None:
        if required:
            raise ApplicationError("Which project? Give its id.", field="project")
        return None
    number = whole_number(raw)
    if number is None:
        raise ApplicationError("A project id is a whole number.", field="project")
    return project_get_for_user(user=request.user, project_id=number, action=action)


class PersonalReportApi(APIView):
    """One person's work over a period: totals, every day, quality figures. Your own report
    by default; a manager reads their members' (over the projects they manage together),
    an administrator anyone's."""

    @extend_schema(
        parameters=[
            OpenApiParameter("user", str, description="Username; yourself if left out."),
            *PERIOD_PARAMETERS,
        ],
        responses=PersonalReportSerializer,
    )
    def get(self, request):
        params = _params(request)
        period = parse_period(params)
        username = params.get("user")
        found = selectors.personal_subject(viewer=request.user, username=username)
        if found is None:  # no such user, or none you share a project with: the same 404
            raise Http404("No such user.")
        subject, project_ids = found
        report = selectors.personal_report(user=subject, period=period, project_ids=project_ids)
        return Response(PersonalReportSerializer(report).data)


class TeamReportApi(APIView):
    """Everyone's figures in a project (``project``), or across the projects you manage: a
    row per person and a total. Managers and administrators."""

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int, description="Project id; all you manage if left out."),
            OpenApiParameter("sort", str, enum=list(selectors.TEAM_SORTS)),
            OpenApiParameter("dir", str, enum=["asc", "desc"]),
            *PERIOD_PARAMETERS,
        ],
        responses=TeamReportSerializer,
    )
    def get(self, request):
        params = _params(request)
        period = parse_period(params)
        sort = params.get("sort", "username")
        if sort not in selectors.TEAM_SORTS:
            raise ApplicationError(
                f"Sort by one of {', '.join(selectors.TEAM_SORTS)}.", field="sort"
            )
        if params.get("dir", "asc") not in {"asc", "desc"}:
            raise ApplicationError("asc or desc.", field="dir")
        project = _project(request, params, required=False, action=Action.VIEW)
        projects = selectors.team_projects(viewer=request.user, project=project)
        report = selectors.team_report(
            projects=projects, period=period, sort=sort, descending=params.get("dir") == "desc"
        )
        return Response(TeamReportSerializer(report).data)


class ProjectReportApi(APIView):
    """A project's progress over a period, day by day. Its managers and administrators."""

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int, required=True, description="Project id."),
            *PERIOD_PARAMETERS,
        ],
        responses=ProjectReportSerializer,
    )
    def get(self, request):
        params = _params(request)
        period = parse_period(params)
        project = _project(request, params, required=True, action=Action.VIEW)
        if project is None:  # pragma: no cover - required above
            raise ApplicationError("Which project? Give its id.", field="project")
        if not selectors.may_read_project_report(user=request.user, project=project):
            raise PermissionDenied("Progress reports are for the project's managers.")
        report = selectors.project_report(project=project, period=period)
        return Response(ProjectReportSerializer(report).data)
