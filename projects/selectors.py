"""Reads for projects and memberships; permission filtering happens here, once."""

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from guardian.shortcuts import get_objects_for_user

from core.access import Action, check_project_access, is_admin

from .models import Delivery, Guideline, Membership, Project


def project_list_for_user(*, user) -> QuerySet[Project]:
    """The projects ``user`` may see, with member counts and the user's own roles."""
    if is_admin(user):
        projects = Project.objects.all()
    elif not user.is_authenticated:
        return Project.objects.none()
    else:
        projects = get_objects_for_user(
            user, "projects.view_project", klass=Project, accept_global_perms=False
        )
    counted = projects.annotate(member_count=Count("memberships__user", distinct=True))
    return counted.order_by("name", "pk").prefetch_related(
        Prefetch(
            "memberships",
            queryset=Membership.objects.filter(user=user.pk),
            to_attr="own_memberships",
        )
    )


def project_get_for_user(
    *, user, slug: str | None = None, project_id: int | None = None, action: Action = Action.VIEW
) -> Project:
    """A project the user may act on: 404 if they may not see it, 403 if not ``action``."""
    lookup: dict[str, object] = {"slug": slug} if slug is not None else {"pk": project_id}
    project = get_object_or_404(Project, **lookup)
    check_project_access(user=user, project=project, action=action)
    return project


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user")


def membership_get(*, project: Project, membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "project"), project=project, pk=membership_id
    )


def user_roles(*, user) -> set[str]:
    """Every role the user holds in any project, plus ``admin`` for administrators."""
    if not user.is_authenticated:
        return set()
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True).distinct())
    if is_admin(user):
        roles.add("admin")
    return roles


def user_roles_and_creation(*, user) -> tuple[set[str], bool]:
    """``user_roles`` and whether the user may create projects (``can_create_project``), in
    one query: the roles held, and a probe of the ``projects.add_project`` permission given
    to the user or one of their groups (what Django's ModelBackend grants; it read every
    permission of the user in two queries for this one answer)."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q, Value

    if not user.is_authenticated:
        return set(), False
    roles = Membership.objects.filter(user=user).order_by().values_list("role")
    if is_admin(user):
        return {role for (role,) in roles.distinct()} | {"admin"}, True
    grant = (
        Permission.objects.filter(
            Q(user=user) | Q(group__user=user),
            codename="add_project",
            content_type__app_label="projects",
        )
        .order_by()
        .values_list(Value("+add_project"))
    )
    found = {row for (row,) in roles.union(grant).order_by()}
    return found - {"+add_project"}, "+add_project" in found


def guideline_list(*, project: Project) -> QuerySet[Guideline]:
    return Guideline.objects.filter(project=project).select_related("author")


def guideline_get_for_user(*, user, slug: str, guideline_id: int, action: Action) -> Guideline:
    """A guideline of a project the user may ``action`` (404 for outsiders, 403 otherwise)."""
    project = project_get_for_user(user=user, slug=slug)
    guideline = get_object_or_404(Guideline.objects.select_related("project"), pk=guideline_id)
    if guideline.project_id != project.pk:
        raise Http404("No such guideline.")
    check_project_access(user=user, project=project, action=action)
    return guideline


# --- quality control -----------------------------------------------------------------------

# Project.settings keys for audit sampling, and what each audit kind means (DESIGN.md §5).
AUDIT_KINDS = {
    "fixless": "Fixless: auditors give feedback on the delivered work and change nothing",
    "standard": "Standard: auditors accept, reject (back to rework) or fix the work",
}
DEFAULT_AUDIT_KIND = "fixless"


def assignment_mode(project: Project) -> str:
    """How work reaches people in the project: ``pull`` (they press Start next task; the
    default) or ``push`` (new ready work is reserved for them automatically)."""
    stored = project.settings if isinstance(project.settings, dict) else {}
    return "push" if stored.get("assignment") == "push" else "pull"


def robot_type(project: Project) -> str:
    """What the project's LeRobot exports name the robot (``info.json`` ``robot_type``);
    empty when unset (the export then says what the source said, or "unknown")."""
    stored = project.settings if isinstance(project.settings, dict) else {}
    value = stored.get("robot_type")
    return value if isinstance(value, str) else ""


def audit_settings(project: Project) -> tuple[float, str]:
    """(percent of delivered units to audit, audit kind). 0 % means audit sampling is off.

    A ``standard`` kind stored while the project delivers per task (delivery changed since)
    reads as ``fixless``: standard audits exist for stage-level delivery only.
    """
    stored = project.settings if isinstance(project.settings, dict) else {}
    try:
        percent = float(stored.get("audit_percent", 0))
    except (TypeError, ValueError):
        percent = 0.0
    percent = min(max(percent, 0.0), 100.0) if percent == percent else 0.0  # NaN → off
    kind = stored.get("audit_kind", DEFAULT_AUDIT_KIND)
    if kind not in AUDIT_KINDS or (kind == "standard" and project.delivery != Delivery.STAGE):
        kind = DEFAULT_AUDIT_KIND
    return percent, kind


@dataclass(frozen=True)
class StageChecks:
    """One work stage's automatic checks, as (what it checks, severity), and its runs that
    carry QC flags (failed ``warn`` checks)."""

    key: str
    title: str
    checks: list[tuple[str, str]]
    flagged_runs: int = 0


@dataclass(frozen=True)
class ReviewRow:
    key: str
    title: str
    reviews: list[str]
    mode: str  # "full", "sample" (a random_sample rule alone decides) or "rules"
    routing: list[str]  # how the gating logic stages route to it, in words
    percent: float | None = None  # the sample's percent, for mode "sample"

    @property
    def percent_label(self) -> str:
        return f"{self.percent:g}" if self.percent is not None else ""


@dataclass
class QualityOverview:
    blueprint: Any  # the active Blueprint, or None
    problem: str = ""  # why the active blueprint could not be read
    checks: list[StageChecks] = field(default_factory=list)
    flagged_runs: int = 0
    flagged_by_stage: dict[str, int] = field(default_factory=dict)
    reviews: list[ReviewRow] = field(default_factory=list)
    work_stages: list[str] = field(default_factory=list)
    audit_percent: float = 0.0
    audit_kind: str = DEFAULT_AUDIT_KIND
    audit_kind_stored: str = DEFAULT_AUDIT_KIND

    @property
    def full_reviews(self) -> list[ReviewRow]:
        """Review stages every task reaches: where a random sample can be put in front."""
        return [r for r in self.reviews if r.mode == "full"]


def _review_row(spec, stage) -> ReviewRow:
    from blueprints.spec import LogicStage, RandomSampleRule

    gates = [
        spec.by_key[d]
        for d in stage.depends_on
        if isinstance(spec.by_key.get(d), LogicStage)
        and (
            spec.by_key[d].else_ == stage.key
            or any(r.to == stage.key for r in spec.by_key[d].rules)
        )
    ]
    routing: list[str] = []
    samples: list[float] = []
    others = False
    for logic in gates:
        reasons = []
        for rule in logic.rules:
            if rule.to == stage.key:
                reasons.append(rule.describe())
                if isinstance(rule, RandomSampleRule):
                    samples.append(rule.percent)
                else:
                    others = True
        if logic.else_ == stage.key:
            reasons.append("every other task")
            others = True
        routing.append(f"logic stage “{logic.key}” sends tasks here on: " + " · ".join(reasons))
    if stage.when is not None:
        routing.append(f"only when {stage.when.describe()}")
    if not gates and stage.when is None:
        mode = "full"
    elif len(gates) == 1 and len(samples) == 1 and not others and stage.when is None:
        mode = "sample"
    else:
        mode = "rules"
    return ReviewRow(
        key=stage.key,
        title=stage.title,
        reviews=[spec.by_key[k].title for k in stage.reviews],
        mode=mode,
        routing=routing,
        percent=samples[0] if mode == "sample" else None,
    )


def quality_overview(*, project: Project) -> QualityOverview:
    """Everything the project's quality-control card shows, in three queries: the active
    blueprint's checks and review stages, the QC-flagged runs per stage, the audit settings."""
    from blueprints.selectors import active_blueprint
    from blueprints.spec import BlueprintInvalid
    from blueprints.validation import validate
    from tasks.models import StageRun

    percent, kind = audit_settings(project)
    stored = project.settings if isinstance(project.settings, dict) else {}
    overview = QualityOverview(
        blueprint=active_blueprint(project=project),
        audit_percent=percent,
        audit_kind=kind,
        audit_kind_stored=str(stored.get("audit_kind", DEFAULT_AUDIT_KIND)),
    )
    flagged = (
        StageRun.objects.filter(project=project)
        .exclude(qc_flags=[])
        .values("stage_key")
        .annotate(runs=Count("pk"))
        .order_by()
    )
    overview.flagged_by_stage = {row["stage_key"]: row["runs"] for row in flagged}
    overview.flagged_runs = sum(overview.flagged_by_stage.values())
    if overview.blueprint is None:
        overview.problem = "The project has no active blueprint."
        return overview
    try:
        spec = validate(overview.blueprint.definition)
    except BlueprintInvalid as exc:
        overview.problem = exc.message
        return overview
    for stage in spec.stages:
        if stage.kind in {"annotate", "consensus"}:
            overview.work_stages.append(stage.title)
            overview.checks.append(
                StageChecks(
                    key=stage.key,
                    title=stage.title,
                    checks=[(c.describe(), c.severity) for c in stage.checks],
                    flagged_runs=overview.flagged_by_stage.get(stage.key, 0),
                )
            )
        if stage.kind == "review":
            overview.reviews.append(_review_row(spec, stage))
    return overview
