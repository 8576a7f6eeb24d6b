"""The few reads the quality page needs besides the figures (``audits.selectors``): what its
stage and annotator filters offer."""

from django.contrib.auth import get_user_model
from django.db.models import Min, Q

from projects.models import Project, Role
from tasks.models import StageRun

# Stages whose work is measured: the ones people annotate.
MEASURED_KINDS = ("annotate", "consensus")


def quality_stage_keys(*, project: Project) -> list[str]:
    """The project's annotate and consensus stages that have runs, in pipeline order (the
    order their first runs were made)."""
    rows = (
        StageRun.objects.filter(project=project, kind__in=MEASURED_KINDS)
        .values("stage_key")
        .annotate(first=Min("id"))
        .order_by("first")
    )
    return [row["stage_key"] for row in rows]


def quality_annotators(*, project: Project) -> list[tuple[int, str]]:
    """``(user id, username)`` of everyone whose work can be measured: members who annotate,
    and whoever worked an annotate stage of the project (former members too)."""
    worked = StageRun.objects.filter(
        project=project, kind__in=MEASURED_KINDS, assignee__isnull=False
    ).values("assignee")
    users = (
        get_user_model()
        .objects.filter(
            Q(memberships__project=project, memberships__role__in=[Role.ANNOTATOR, Role.MANAGER])
            | Q(pk__in=worked)
        )
        .distinct()
        .order_by("username")
        .values_list("pk", "username")
    )
    return list(users)


def user_id_by_username(username: str) -> int | None:
    """The id of the user called ``username`` (the quality API's ``annotator``), or None."""
    return get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
