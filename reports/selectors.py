"""Figures of the reports (issue 14): one person's work over a period, a team's, a project's
progress over time. Aggregate SQL grouped by person and day, a fixed number of queries per
report (plus three per project for the quality figures, read from ``audits.selectors``).

What each figure counts (days in the current time zone, ``start`` and ``end`` inclusive):

- **started** / **submitted**: ``stage_started`` / ``stage_submitted`` events of annotate and
  consensus runs, by their actor (a resubmission after rework counts again).
- **completed**: annotate and consensus runs whose work stands completed, by their assignee,
  on the day of ``StageRun.completed_at`` (work sent back is no longer completed).
- **active_seconds**, **median_seconds**: ``StageRun.active_seconds`` of the runs last
  submitted in the period (on the day of ``submitted_at``): the sum, and the median per run.
- **rework**: the person's runs sent back, one per rejecting ``ReviewOutcome`` (a review or a
  standard audit rejecting their run), on the day of the decision.
- **reviews** (**approved**, **rejected**): ``review_approved`` / ``review_rejected`` events
  by the reviewer; **audits**: audits they completed (``Audit.completed_at``).
- quality: ``first_pass_rate`` and ``accuracy`` of ``audits.selectors.project_quality`` (its
  ``by_annotator`` entry for the person). Over several projects the counts behind the two
  figures are added and divided the same way (``combined_quality``).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from audits.models import Audit, ReviewOutcome
from audits.rollups import in_period, period_bounds
from audits.selectors import project_quality
from core.access import Action, is_admin, project_allows
from projects.models import Membership, Project, Role
from projects.progress import DONE_STATUSES, completions_per_day
from tasks.models import StageRun, Task, TaskEvent

from .periods import Period

WORK_KINDS = ("annotate", "consensus")
# Per person and day; ``active_seconds`` and ``median_seconds`` are seconds, the rest counts.
ACTIVITY_KEYS = (
    "started",
    "submitted",
    "completed",
    "active_seconds",
    "rework",
    "reviews",
    "approved",
    "rejected",
    "audits",
)
QUALITY_COUNTS = ("reviewed", "first_pass", "audited_annotations", "errors", "missing")
EVENT_KINDS = ("stage_started", "stage_submitted", "review_approved", "review_rejected")

User = get_user_model()


def _empty() -> dict[str, float]:
    return dict.fromkeys(ACTIVITY_KEYS, 0)


def _scope(field: str, project_ids: Iterable[int] | None) -> Q:
    return Q() if project_ids is None else Q(**{f"{field}__in": list(project_ids)})


def _person(field: str, person_id: int | None) -> Q:
    return Q(**{f"{field}__isnull": False}) if person_id is None else Q(**{field: person_id})


def activity(
    *, period: Period, project_ids: Iterable[int] | None = None, person_id: int | None = None
) -> tuple[dict[int, dict[dt.date, dict[str, float]]], dict[int, list[float]]]:
    """Everyone's (or one person's) work in the projects (None: all) per person and day, and
    the active seconds of each run they last submitted in the period (for medians). Six
    queries, whatever the number of people or days."""
    since, until = period_bounds(period.start, period.end)
    ids = None if project_ids is None else list(project_ids)
    table: dict[int, dict[dt.date, dict[str, float]]] = defaultdict(lambda: defaultdict(_empty))

    work_run = StageRun.objects.filter(
        task=OuterRef("task"), stage_key=OuterRef("stage_key"), kind__in=WORK_KINDS
    )
    events = (
        TaskEvent.objects.filter(
            in_period("created_at", since, until),
            _scope("task__project", ids),
            _person("actor", person_id),
            kind__in=EVENT_KINDS,
            task__deleted_at__isnull=True,  # a deleted task's events wait for its purge
        )
        .annotate(day=TruncDate("created_at"), work=Exists(work_run))
        .order_by()
        .values("actor", "day", "kind", "work")
        .annotate(n=Count("id"))
    )
    for row in events:
        cell = table[row["actor"]][row["day"]]
        if row["kind"] == "stage_started" and row["work"]:
            cell["started"] += row["n"]
        elif row["kind"] == "stage_submitted" and row["work"]:
            cell["submitted"] += row["n"]
        elif row["kind"] in ("review_approved", "review_rejected"):
            cell["reviews"] += row["n"]
            cell["approved" if row["kind"] == "review_approved" else "rejected"] += row["n"]

    runs = StageRun.objects.filter(
        _scope("task__project", ids), _person("assignee", person_id), kind__in=WORK_KINDS
    )
    completed = (
        runs.filter(in_period("completed_at", since, until))
        .annotate(day=TruncDate("completed_at"))
        .order_by()
        .values("assignee", "day")
        .annotate(n=Count("id"))
    )
    for done in completed:
        table[done["assignee"]][done["day"]]["completed"] += done["n"]
    submitted = runs.filter(in_period("submitted_at", since, until))
    timed = (
        submitted.annotate(day=TruncDate("submitted_at"))
        .order_by()
        .values("assignee", "day")
        .annotate(seconds=Sum("active_seconds"))
    )
    for spent in timed:
        table[spent["assignee"]][spent["day"]]["active_seconds"] += spent["seconds"] or 0
    seconds: dict[int, list[float]] = defaultdict(list)
    for assignee, value in submitted.order_by().values_list("assignee", "active_seconds"):
        seconds[assignee].append(value)

    rework = (
        ReviewOutcome.objects.filter(
            in_period("created_at", since, until),
            _scope("project", ids),
            _person("annotator", person_id),
            accepted=False,
        )
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("annotator", "day")
        .annotate(n=Count("id"))
    )
    for sent_back in rework:
        table[sent_back["annotator"]][sent_back["day"]]["rework"] += sent_back["n"]
    audits = (
        Audit.objects.filter(
            in_period("completed_at", since, until),
            _scope("project", ids),
            _person("auditor", person_id),
            status=Audit.Status.COMPLETED,
            task__deleted_at__isnull=True,  # as after the purge, which takes them
        )
        .annotate(day=TruncDate("completed_at"))
        .order_by()
        .values("auditor", "day")
        .annotate(n=Count("id"))
    )
    for audit in audits:
        table[audit["auditor"]][audit["day"]]["audits"] += audit["n"]
    return table, seconds


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _add(total: dict[str, float], more: dict[str, float]) -> None:
    for key in ACTIVITY_KEYS:
        total[key] += more[key]


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) if k == "active_seconds" else int(v) for k, v in figures.items()}


def _by_day(period: Period, days: dict[dt.date, dict[str, float]]) -> list[dict[str, Any]]:
    return [{"day": day} | _rounded(days.get(day, _empty())) for day in period.days]


def combined_quality(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """First-pass rate and accuracy of ``project_quality`` entries (projects, or one person in
    several projects): one entry's figures as they are; several entries' counts added and
    divided as ``audits.selectors.first_pass_and_accuracy`` defines the figures."""
    from audits.selectors import first_pass_and_accuracy

    counts = {key: sum(e["counts"].get(key, 0) for e in entries) for key in QUALITY_COUNTS}
    if len(entries) == 1:
        first_pass_rate, accuracy = entries[0]["first_pass_rate"], entries[0]["accuracy"]
    else:
        first_pass_rate, accuracy = first_pass_and_accuracy(counts)
    return {"first_pass_rate": first_pass_rate, "accuracy": accuracy, "quality_counts": counts}


# --- who may see which report (DESIGN.md §8: managers their projects, everyone their own) ---


def managed_project_ids(*, user) -> list[int] | None:
    """The projects whose reports ``user`` reads (None: every project, an administrator)."""
    if is_admin(user):
        return None
    return list(
        Membership.objects.filter(user=user, role=Role.MANAGER)
        .order_by("project_id")
        .values_list("project_id", flat=True)
        .distinct()
    )


def personal_subject(*, viewer, username: str | None) -> tuple[Any, list[int] | None] | None:
    """Whose personal report ``viewer`` asked for and the projects it covers (None: all).

    Your own report covers all your projects; a manager reads a member's report over the
    projects they manage together, an administrator anyone's over everything. None when no
    such user exists or the viewer shares no project with them (a page answers 404);
    PermissionDenied when they share a project the viewer does not manage (403)."""
    if not username or username == viewer.get_username():
        return viewer, None
    subject = User.objects.filter(username=username).first()
    if subject is None:
        return None
    if is_admin(viewer):
        return subject, None
    theirs = set(Membership.objects.filter(user=subject).values_list("project_id", flat=True))
    mine = Membership.objects.filter(user=viewer, project_id__in=theirs).values_list(
        "project_id", "role"
    )
    shared = {project for project, _ in mine}
    if not shared:
        return None
    managed = sorted({project for project, role in mine if role == Role.MANAGER})
    if not managed:
        raise PermissionDenied("You may read your own report; other people's are for managers.")
    return subject, managed


def may_read_project_report(*, user, project: Project) -> bool:
    """A project's team and progress reports are for its managers (and administrators)."""
    return project_allows(user, project, Action.CHANGE)


def team_projects(*, viewer, project: Project | None) -> list[Project]:
    """The projects of a team report: the one asked for (the caller checked that the viewer
    sees it), or every project the viewer manages. PermissionDenied when they manage it
    (or anything) not."""
    if project is not None:
        if not may_read_project_report(user=viewer, project=project):
            raise PermissionDenied("Team reports are for the project's managers.")
        return [project]
    ids = managed_project_ids(user=viewer)
    projects = Project.objects.order_by("name", "pk")
    if ids is not None:
        if not ids:
            raise PermissionDenied("Team reports are for managers: you manage no project.")
        projects = projects.filter(pk__in=ids)
    return list(projects)


# --- the reports ---


def personal_report(*, user, period: Period, project_ids: list[int] | None) -> dict[str, Any]:
    """One person's work over ``period`` in the projects (None: all of theirs): totals, one
    row per day, and their quality figures per project and together."""
    table, seconds = activity(period=period, project_ids=project_ids, person_id=user.pk)
    days = table.get(user.pk, {})
    totals = _empty()
    for figures in days.values():
        _add(totals, figures)
    quality = person_quality(user=user, period=period, project_ids=project_ids)
    return {
        "user": user.get_username(),
        "user_id": user.pk,
        "start": period.start,
        "end": period.end,
        "totals": _rounded(totals) | {"median_seconds": median(seconds.get(user.pk, []))},
        "quality": quality["combined"],
        "quality_by_project": quality["by_project"],
        "by_day": _by_day(period, days),
    }


def person_quality(*, user, period: Period, project_ids: list[int] | None = None) -> dict[str, Any]:
    """The person's first-pass rate and accuracy over ``period`` in each project they
    annotate in (of ``project_ids``; None: all), and all of them together."""
    projects = Project.objects.filter(
        _scope("pk", project_ids),
        memberships__user=user,
        memberships__role__in=[Role.ANNOTATOR, Role.MANAGER],
    )
    by_project = []
    for project in projects.distinct().order_by("name", "pk"):
        figures = project_quality(
            project=project, start=period.start, end=period.end, annotator=user.pk
        )
        by_project.append(
            {
                "project_id": project.pk,
                "project": project.name,
                "slug": project.slug,
                "first_pass_rate": figures["first_pass_rate"],
                "accuracy": figures["accuracy"],
                "counts": figures["counts"],
            }
        )
    return {"combined": combined_quality(by_project), "by_project": by_project}


TEAM_SORTS = ("username", *ACTIVITY_KEYS, "median_seconds", "first_pass_rate", "accuracy")


def team_report(
    *, projects: list[Project], period: Period, sort: str = "username", descending: bool = False
) -> dict[str, Any]:
    """Everyone's figures in ``projects`` over ``period``: a row per person (members who
    annotate or review, and anyone else who worked there in the period), a total row and the
    team's work per day."""
    ids = [p.pk for p in projects]
    table, seconds = activity(period=period, project_ids=ids)
    members = set(
        Membership.objects.filter(
            project_id__in=ids, role__in=[Role.ANNOTATOR, Role.REVIEWER]
        ).values_list("user_id", flat=True)
    )
    quality: dict[int, list[dict]] = defaultdict(list)
    project_totals = []
    for project in projects:
        figures = project_quality(project=project, start=period.start, end=period.end)
        project_totals.append(figures)
        for entry in figures["by_annotator"]:
            if entry["user_id"] is not None:
                quality[entry["user_id"]].append(entry)
    people = members | set(table) | set(quality)
    names = dict(User.objects.filter(pk__in=people).values_list("pk", "username"))
    team_days: dict[dt.date, dict[str, float]] = defaultdict(_empty)
    total = _empty()
    rows: list[dict[str, Any]] = []
    for pk in people:
        figures = _empty()
        for day, cell in table.get(pk, {}).items():
            _add(figures, cell)
            _add(team_days[day], cell)
        _add(total, figures)
        rows.append(
            {"username": names.get(pk, ""), "user_id": pk}
            | _rounded(figures)
            | {"median_seconds": median(seconds.get(pk, []))}
            | combined_quality(quality.get(pk, []))
        )
    key = sort if sort in TEAM_SORTS else "username"
    rows.sort(key=lambda r: r["username"])  # ties stay in name order either way (stable)
    present = [r for r in rows if r[key] is not None]
    present.sort(key=lambda r: r[key], reverse=descending)
    rows = present + [r for r in rows if r[key] is None]
    everyone = [value for values in seconds.values() for value in values]
    return {
        "projects": [{"id": p.pk, "name": p.name, "slug": p.slug} for p in projects],
        "start": period.start,
        "end": period.end,
        "sort": key,
        "descending": descending,
        "people": rows,
        "total": _rounded(total)
        | {"median_seconds": median(everyone)}
        | combined_quality(project_totals),
        "by_day": _by_day(period, team_days),
    }


def project_report(*, project: Project, period: Period) -> dict[str, Any]:
    """A project's progress over ``period``, per day: tasks created, tasks and stage runs
    completed (``projects.progress.completions_per_day``: a task on the day its last run
    completed, if done now), and the share of the tasks there were by then that are done
    (the tasks done before the period are those done now less those completed since)."""
    since, _ = period_bounds(period.start, period.end)
    tasks = Task.objects.filter(project=project)
    created = dict(
        tasks.filter(in_period("created_at", *period_bounds(period.start, period.end)))
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("id"))
    )
    tasks_before = tasks.filter(created_at__lt=since).count()
    done_now = tasks.filter(status__in=DONE_STATUSES).count()
    window = completions_per_day(project_ids=[project.pk], start=period.start, end=period.end)
    today = timezone.localdate()
    later = (
        completions_per_day(
            project_ids=[project.pk], start=period.end + dt.timedelta(days=1), end=today
        )
        if period.end < today
        else []
    )
    done = max(0, done_now - sum(d.tasks for d in window) - sum(d.tasks for d in later))
    done_before, existing = done, tasks_before
    by_day = []
    for completions in window:
        existing += created.get(completions.day, 0)
        done += completions.tasks
        by_day.append(
            {
                "day": completions.day,
                "tasks_created": created.get(completions.day, 0),
                "tasks_completed": completions.tasks,
                "runs_completed": completions.runs,
                "tasks": existing,
                "tasks_done": done,
                "share_done": round(min(done / existing, 1.0), 4) if existing else None,
            }
        )
    return {
        "project": {"id": project.pk, "name": project.name, "slug": project.slug},
        "start": period.start,
        "end": period.end,
        "tasks_before": tasks_before,
        "done_before": done_before,
        "totals": {
            "tasks_created": sum(created.values()),
            "tasks_completed": sum(d.tasks for d in window),
            "runs_completed": sum(d.runs for d in window),
        },
        "by_day": by_day,
    }
