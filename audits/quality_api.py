"""``GET /api/v1/projects/{id}/quality/``: the project's quality figures (audits.selectors).

Managers and reviewers (``Action.REVIEW``) read everyone's figures and may narrow them to
one annotator; an annotator of the project reads their own figures only (the
``annotator`` parameter is theirs whatever they send), as DESIGN.md §8 gives them their own
progress and not other people's.
"""

from django.core.exceptions import PermissionDenied
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import Action, project_allows, require
from projects.selectors import project_get_for_user

from . import quality_selectors, selectors

FIGURE_HELP = {
    "first_pass_rate": "Runs accepted on their first review or standard audit ÷ those decided.",
    "accuracy": "(Audited annotations − those with a counted error) ÷ (audited annotations "
    "+ counted missing findings).",
    "consistency": "Mean agreement of annotator pairs on the same samples (IoU, alpha).",
    "completeness": "Samples carrying every required annotation ÷ samples to annotate.",
}


class QualityQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=selectors.PERIODS, required=False)
    # ``from`` is a Python keyword: the field is declared under that name below.
    to = serializers.DateField(required=False)
    stage = serializers.CharField(max_length=64, required=False)
    annotator = serializers.CharField(max_length=150, required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False)
        return fields

    def validate_annotator(self, username: str) -> int:
        user_id = quality_selectors.user_id_by_username(username)
        if user_id is None:
            raise serializers.ValidationError(f"No user is called {username!r}.")
        return user_id

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        if start and end and start > end:
            raise serializers.ValidationError({"to": ["Must not be before “from”."]})
        return attrs


class QualityCountsSerializer(serializers.Serializer):
    reviewed = serializers.IntegerField(help_text="First decisions on first attempts.")
    first_pass = serializers.IntegerField(help_text="Of those, accepted.")
    audits = serializers.IntegerField(help_text="Current completed audits.")
    audited_annotations = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Annotations with a counted error (not missing).")
    missing = serializers.IntegerField(help_text="Counted missing findings.")
    agreement_pairs = serializers.IntegerField()
    samples_total = serializers.IntegerField()
    samples_complete = serializers.IntegerField()
    qc_flags = serializers.IntegerField(help_text="Runs submitted with failed warn checks.")


class QualityFiguresSerializer(serializers.Serializer):
    first_pass_rate = serializers.FloatField(
        allow_null=True, help_text=FIGURE_HELP["first_pass_rate"]
    )
    accuracy = serializers.FloatField(allow_null=True, help_text=FIGURE_HELP["accuracy"])
    consistency = serializers.FloatField(allow_null=True, help_text=FIGURE_HELP["consistency"])
    completeness = serializers.FloatField(allow_null=True, help_text=FIGURE_HELP["completeness"])
    counts = QualityCountsSerializer()


class QualityGroupSerializer(QualityFiguresSerializer):
    key = serializers.CharField(
        allow_null=True,
        help_text="The stage key, the annotator's username (null: a deleted user) or the "
        "period's first day (YYYY-MM-DD).",
    )


class QualityAnnotatorSerializer(QualityGroupSerializer):
    user_id = serializers.IntegerField(allow_null=True)


ErrorsByCategorySerializer = type(
    "ErrorsByCategorySerializer",
    (serializers.Serializer,),
    {category: serializers.IntegerField() for category in selectors.CATEGORIES},
)


class QualitySerializer(QualityFiguresSerializer):
    errors_by_category = ErrorsByCategorySerializer(
        help_text="Counted current error findings per category."
    )
    by_stage = QualityGroupSerializer(many=True)
    by_annotator = QualityAnnotatorSerializer(many=True)
    by_period = QualityGroupSerializer(many=True, help_text="Empty unless ``period`` is given.")


class ProjectQualityApi(APIView):
    """Quality figures of a project: each a fraction 0–1 rounded to 4 places, or null when
    nothing measures it yet. Managers and reviewers see everyone; an annotator sees their
    own figures only (``annotator`` is set to them)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("period", enum=list(selectors.PERIODS), description="Add by_period."),
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive)."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive)."),
            OpenApiParameter("stage", str, description="Only this stage key."),
            OpenApiParameter("annotator", str, description="Only this annotator (username)."),
        ],
        responses=QualitySerializer,
    )
    def get(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id)
        own_only = False
        try:
            require(request.user, project, Action.REVIEW, "You may not read quality reports.")
        except PermissionDenied:
            if not project_allows(request.user, project, Action.ANNOTATE):
                raise
            own_only = True
        # An empty parameter (a form's blank field) means no filter.
        params = {key: value for key, value in request.query_params.items() if value != ""}
        if own_only:
            params.pop("annotator", None)
        query = QualityQuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        figures = selectors.project_quality(
            project=project,
            period=data.get("period"),
            start=data.get("from"),
            end=data.get("to"),
            stage=data.get("stage"),
            annotator=request.user.pk if own_only else data.get("annotator"),
        )
        return Response(QualitySerializer(figures).data)
