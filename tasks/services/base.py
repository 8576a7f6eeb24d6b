"""The shared pieces of the task services: the status machine, locking a task, the
blueprint spec of a task, events, and reading ids and samples sent by clients.

Every other module of the package builds on this one (and on ``sync`` and ``access``);
nothing here imports them back."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import DateTimeField, Prefetch, Value, prefetch_related_objects
from django.db.models.functions import Concat
from django.http import Http404
from django.utils import timezone

from blueprints.models import Blueprint
from blueprints.spec import BlueprintSpec
from blueprints.validation import validate
from core.access import grant_queries, remember_permissions
from core.exceptions import ApplicationError, InvalidTransition
from projects.models import Dataset

from ..models import AnnotationReview, StageRun, Task, TaskEvent, TaskStatus

# Done: every stage run completed or skipped (an export sending the data on keeps it done).
DONE_STATUSES: frozenset[str] = frozenset({TaskStatus.REVIEW_PASSED, TaskStatus.DATA_SUBMITTED})
# The columns a status change writes (callers save them: ``task.save(update_fields=...)``).
STATUS_FIELDS: list[str] = ["status", "finished_at", "updated_at"]
OPEN_VERDICTS = (AnnotationReview.Verdict.REJECTED, AnnotationReview.Verdict.MISSING)

TRANSITIONS: dict[str, set[str]] = {
    TaskStatus.PENDING_START: {TaskStatus.IN_PROGRESS, TaskStatus.REVIEW_PASSED},
    TaskStatus.IN_PROGRESS: {TaskStatus.PENDING_REVIEW, TaskStatus.REVIEW_PASSED},
    TaskStatus.PENDING_REVIEW: {TaskStatus.IN_PROGRESS, TaskStatus.REVIEW_PASSED},
    TaskStatus.REVIEW_PASSED: {TaskStatus.DATA_SUBMITTED, TaskStatus.IN_PROGRESS},
    TaskStatus.DATA_SUBMITTED: set(),
}


@lru_cache(maxsize=256)
def _spec(blueprint_id: int, updated_at) -> BlueprintSpec:
    return validate(Blueprint.objects.get(pk=blueprint_id).definition)


def spec_for(blueprint: Blueprint) -> BlueprintSpec:
    return _spec(blueprint.pk, blueprint.updated_at)


def task_seed(task: Task) -> str:
    """The task's seed for every reproducible draw (logic ``random_sample``, ``sampling``)."""
    return f"task-{task.pk}"


def event(task: Task, kind: str, actor=None, stage_key: str = "", **data: Any) -> TaskEvent:
    return TaskEvent(task=task, kind=kind, actor=actor, stage_key=stage_key, data=data)


def task_transition(*, task: Task, to: str, actor=None) -> TaskEvent:
    """Move the stored status; anything the status machine does not allow is refused.
    ``finished_at`` follows: set when the task becomes done, kept while it stays done
    (review_passed → data_submitted), cleared when it is reopened. The caller saves
    ``STATUS_FIELDS``."""
    if to not in TRANSITIONS[task.status]:
        raise InvalidTransition(
            f"A task cannot go from {task.get_status_display().lower()} to "
            f"{TaskStatus(to).label.lower()}.",
            field="status",
        )
    previous, task.status = task.status, to
    if to in DONE_STATUSES:
        if previous not in DONE_STATUSES or task.finished_at is None:
            task.finished_at = timezone.now()
    else:
        task.finished_at = None
    return event(task, "status_changed", actor, previous=previous, status=to)


def as_id(value: Any, field: str) -> int | None:
    """An id sent by a client (int or digits), or a clear error naming the field."""
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApplicationError(f"{field} must be an id.", field=field)
    try:
        number = int(value)
    except ValueError:
        raise ApplicationError(f"{field} must be an id.", field=field) from None
    if not 0 < number < 2**31:
        raise ApplicationError(f"{field} must be an id.", field=field)
    return number


def task_sample(task: Task, sample_id: Any, field: str = "sample"):
    """One of the task's samples, or a clear error."""
    from projects.models import Sample

    number = as_id(sample_id, field)
    sample = Sample.objects.filter(pk=number, dataset__tasks=task).first() if number else None
    if sample is None:
        raise ApplicationError("That sample is not one of the task's.", field=field)
    return sample


def lock_task(task_id: int, actor=None, *, outcomes: bool = False) -> Task:
    """Lock the task's row for the transaction — the one lock of a task service: not its
    project's or blueprint's rows, which are read with it — and read, in one more query,
    what the services ask of a task: its datasets (``task._dataset_list``: ids, names and
    creation times; other fields load when read), the people it names (``named_ids``),
    ``actor``'s grants on the project (core.access, cached on ``task.project``) and, with
    ``outcomes``, which of its runs a first attempt's decision was already recorded for
    (``task._decided``, for ``record_outcomes``). Its runs are read once more, when first
    asked (``task_runs``)."""
    from audits.models import ReviewOutcome

    try:
        task = (
            Task.objects.select_for_update(of=("self",))
            .select_related("blueprint", "project")
            .get(pk=task_id)
        )
    except Task.DoesNotExist:  # deleted since the caller read it: hidden, awaiting its purge
        raise Http404("This task has been deleted.") from None
    none = Value(None, output_field=DateTimeField())
    people = [
        through.objects.filter(task_id=task.pk)
        .order_by()
        .values_list(Value(kind), "user_id", Value(""), none)
        for kind, through in (("a", Task.annotators.through), ("r", Task.reviewers.through))
    ]
    grants = grant_queries(actor, task.project) if actor is not None else None
    branches = [
        *people,
        *(q.values_list(Value("p"), Value(0), "codename", none) for q in grants or []),
    ]
    if outcomes:
        branches.append(
            ReviewOutcome.objects.filter(task_id=task.pk, attempt=1)
            .order_by()
            .values_list(Value("o"), "replica", "stage_key", none)
        )
        # Review per annotation: the rejections and missing marks left open (by attempt).
        branches.append(
            AnnotationReview.objects.filter(task_id=task.pk, verdict__in=OPEN_VERDICTS)
            .order_by()
            .values_list(
                Value("v"), "attempt", Concat("review_stage", Value("/"), "stage_key"), none
            )
        )
    rows = (
        Dataset.objects.filter(tasks=task.pk)
        .order_by()
        .values_list(Value("d"), "pk", "name", "created_at")
        .union(*branches, all=True)
        .order_by()
    )
    found: dict[str, list] = {"d": [], "a": [], "r": [], "p": [], "o": [], "v": []}
    for kind, number, text, at in rows:
        found[kind].append((number, text, at))
    # In the order of ``task.datasets.all()`` (Dataset's ordering: newest first).
    found["d"].sort(key=lambda row: (row[2], row[0]), reverse=True)
    db = task._state.db
    task._dataset_list = [
        Dataset.from_db(db, ["id", "name", "created_at"], [pk, name, at])
        for pk, name, at in found["d"]
    ]
    task._named = {
        "annotators": [pk for pk, _, _ in found["a"]],
        "reviewers": [pk for pk, _, _ in found["r"]],
    }
    if grants is not None:
        remember_permissions(actor, task.project, (code for _, code, _ in found["p"]))
    if outcomes:
        task._decided = {(key, replica) for replica, key, _ in found["o"]}
        task._open_verdicts = [(*keys.split("/", 1), n) for n, keys, _ in found["v"]]
    return task


def lock_tasks(task_ids: list[int], actor, *, outcomes: bool = False) -> list[Task]:
    """``lock_task`` for many tasks, in a bounded number of queries whatever their number:
    the rows locked in one statement (in id order, as every batch locks), then their
    datasets, the people they name, their runs (``task_runs``), ``actor``'s grants (one read
    per project, shared by the tasks of a project) and, with ``outcomes``, the first
    attempts' decisions and open verdicts — each task carries what ``lock_task`` gives it.
    Tasks deleted meanwhile are left out."""
    from audits.models import ReviewOutcome

    from .bulk import id_set

    if not task_ids:
        return []
    from projects.models import Project

    tasks = list(Task.objects.select_for_update().filter(pk__in=id_set(task_ids)).order_by("pk"))
    ids = [t.pk for t in tasks]
    # Their projects and blueprint versions (a few) once each, not a copy per task: the
    # grants are cached on the project, and a blueprint's document is not decoded per task
    # (its spec is cached by id and date: ``spec_for``).
    projects = Project.objects.in_bulk({t.project_id for t in tasks})
    blueprints = Blueprint.objects.defer("definition", "source").in_bulk(
        {t.blueprint_id for t in tasks}
    )
    runs = list(StageRun.objects.filter(task_id__in=id_set(ids)))
    assignees = get_user_model().objects.in_bulk({r.assignee_id for r in runs if r.assignee_id})
    for task in tasks:
        task.project = projects[task.project_id]
        task.blueprint = blueprints[task.blueprint_id]
        task._dataset_list = []
        task._named = {"annotators": [], "reviewers": []}
        task._prefetched_objects_cache = {"runs": []}  # type: ignore[attr-defined]
        if outcomes:
            task._decided, task._open_verdicts = set(), []
    by_id = {t.pk: t for t in tasks}
    db = tasks[0]._state.db if tasks else "default"
    rows = (
        Dataset.objects.filter(tasks__in=id_set(ids))
        .order_by("-created_at", "-pk")
        .values_list("tasks", "pk", "name", "created_at")
    )
    for task_id, pk, name, at in rows:
        by_id[task_id]._dataset_list.append(
            Dataset.from_db(db, ["id", "name", "created_at"], [pk, name, at])
        )
    named = (("annotators", Task.annotators.through), ("reviewers", Task.reviewers.through))
    for people, through in named:
        for task_id, user_id in through.objects.filter(task_id__in=id_set(ids)).values_list(
            "task_id", "user_id"
        ):
            by_id[task_id]._named[people].append(user_id)
    for run in runs:
        task = by_id[run.task_id]
        run.task, run.assignee = task, assignees.get(run.assignee_id)
        task._prefetched_objects_cache["runs"].append(run)  # type: ignore[attr-defined]
    if actor is not None:
        for project in projects.values():
            grants = grant_queries(actor, project)
            if grants is not None:
                codes = grants[0].union(*grants[1:], all=True).order_by()
                remember_permissions(actor, project, list(codes))
    if outcomes:
        decided = ReviewOutcome.objects.filter(task_id__in=id_set(ids), attempt=1).order_by()
        for task_id, replica, key in decided.values_list("task_id", "replica", "stage_key"):
            by_id[task_id]._decided.add((key, replica))
        verdicts = (
            AnnotationReview.objects.filter(task_id__in=id_set(ids), verdict__in=OPEN_VERDICTS)
            .order_by()
            .values_list("task_id", "review_stage", "stage_key", "attempt")
        )
        for task_id, review, key, attempt in verdicts:
            by_id[task_id]._open_verdicts.append((review, key, attempt))
    return tasks


def named_ids(task: Task, people: str) -> list[int]:
    """The ids of the task's ``annotators`` or ``reviewers`` (``people``): as read with the
    lock (``lock_task``), else from ``task.annotators`` (``task.reviewers``) — a prefetch, or
    a stand-in's own list (tasks.services.transfer)."""
    known = task.__dict__.get("_named")
    if known is not None:
        return known[people]
    return [u.pk for u in getattr(task, people).all()]


def task_runs(task: Task) -> list[StageRun]:
    """The task's runs with their assignees, read once for the locked task and shared by
    every step of a service (``task.runs.all()`` answers from the same read): a step that
    changes a run changes these objects, so the steps after it see the change."""
    cache = getattr(task, "_prefetched_objects_cache", {})
    if "runs" not in cache:
        prefetch_related_objects(
            [task], Prefetch("runs", queryset=StageRun.objects.select_related("assignee"))
        )
    return list(task._prefetched_objects_cache["runs"])  # type: ignore[attr-defined]


def save_events(events: list[TaskEvent]) -> None:
    from notifications.services import notify_for_events

    from .bulk import copy_available, copy_rows

    if len(events) > 1 and copy_available():  # a batch's events: COPY, no SQL per row
        copy_rows(TaskEvent, [event_row(e) for e in events])
    else:
        TaskEvent.objects.bulk_create(events)
    notify_for_events(events)


def event_row(e: TaskEvent) -> dict[str, Any]:
    """An event as a row for ``bulk.copy_rows``."""
    return {
        "task_id": e.task_id,
        "kind": e.kind,
        "stage_key": e.stage_key,
        "actor_id": e.actor_id,
        "data": e.data,
    }  # who should hear of it (assigned, sent back, problems, audits)
