"""``GET /api/v1/projects/{id}/progress/``: completion, throughput, ETA, the stage funnel and
per-annotator work of a project (``projects.progress``; definitions in its docstring).

Who may read it (DESIGN.md §8 "reports"): administrators, the project's managers and its
reviewers (who see all of the project's tasks and who works on them, and read the quality
report's per-annotator figures already). Annotators get 403: their own progress is the
personal report's; outsiders 404.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import Action, require
from tasks.models import TaskStatus

from . import progress
from .selectors import project_get_for_user

ByStatusSerializer = type(
    "ProgressByStatusSerializer",
    (serializers.Serializer,),
    {status: serializers.IntegerField() for status in TaskStatus.values},
)


class StageProgressSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    blocked = serializers.IntegerField(help_text="Waiting for upstream stages.")
    ready = serializers.IntegerField(help_text="Ready, nobody has started them.")
    in_progress = serializers.IntegerField()
    in_review = serializers.IntegerField(
        help_text="Submitted (consensus partners pending) or completed with their reviewing "
        "stage open on the same task."
    )
    done = serializers.IntegerField(help_text="Completed or skipped, less those in review.")
    alert = serializers.CharField(
        help_text="“stalled” (ready runs, none started for a day), “idle” (open runs, none "
        "finished for three days) or empty."
    )


class AnnotatorProgressSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField()
    in_progress = serializers.IntegerField(help_text="Annotate runs in progress now.")
    done_7d = serializers.IntegerField(help_text="Annotate runs completed in the last 7 days.")
    median_seconds = serializers.FloatField(
        allow_null=True, help_text="Median active seconds per run completed in 28 days."
    )
    first_pass_rate = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)


class DayThroughputSerializer(serializers.Serializer):
    day = serializers.DateField()
    tasks = serializers.IntegerField()
    runs = serializers.IntegerField()


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = ByStatusSerializer()
    done = serializers.IntegerField(help_text="review_passed + data_submitted.")
    remaining = serializers.IntegerField()
    percent_complete = serializers.FloatField(help_text="done ÷ total × 100, one decimal.")
    throughput_per_day = serializers.FloatField(
        help_text="Tasks finished per day: exponentially weighted average of the last 14 "
        "days (half-life 3.5 days)."
    )
    runs_per_day = serializers.FloatField(help_text="Work stage runs completed per day, alike.")
    eta_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="remaining ÷ throughput_per_day; null with fewer than 3 days with "
        "finished tasks in the last 14.",
    )
    eta_range = serializers.ListField(
        child=serializers.IntegerField(allow_null=True),
        allow_null=True,
        help_text="[low, high] seconds from the rate ± its standard error; high is null when "
        "the slow end of the rate is not above 0.",
    )
    eta_date = serializers.DateTimeField(allow_null=True)
    eta_reason = serializers.CharField(help_text="Why there is no ETA (empty when there is).")
    overdue = serializers.IntegerField(help_text="Open tasks past their due date.")
    due_soon = serializers.IntegerField(help_text="Open tasks due in the next 48 hours.")
    stages = StageProgressSerializer(many=True)
    annotators = AnnotatorProgressSerializer(many=True)
    throughput = DayThroughputSerializer(many=True, help_text="The last 28 days, today last.")


class ProjectProgressApi(APIView):
    """Progress of a project (API.md): completion, throughput, ETA, the stage funnel and
    per-annotator work. Administrators, managers and reviewers of the project."""

    @extend_schema(responses=ProgressSerializer)
    def get(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id)
        require(request.user, project, Action.REVIEW, "You may not read this project's progress.")
        figures = progress.project_progress(project=project)
        return Response(ProgressSerializer(figures).data)
