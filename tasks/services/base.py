"""The shared pieces of the task services: the status machine, locking a task, the
blueprint spec of a task, events, and reading ids and samples sent by clients.

Every other module of the package builds on this one (and on ``sync`` and ``access``);
nothing here imports them back."""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import DateTimeField, Prefetch, QuerySet, Value, prefetch_related_objects
from django.db.models.functions import Concat
from django.http import Http404
from django.utils import timezone

from blueprints.models import Blueprint
from blueprints.spec import BlueprintSpec
from blueprints.validation import validate
from core import compiled
from core.access import grant_queries, grants_unread, remember_permissions
from core.exceptions import ApplicationError, InvalidTransition
from projects.models import Dataset, Project

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
    if compiled.available():  # the two reads' SQL compiled once (core.compiled)
        locked = compiled.compiled_objects(("lock_task",), _locked, [task_id])
        task = locked[0] if locked else None
    else:
        task = _locked(task_id).first()
    if task is None:  # deleted since the caller read it: hidden, awaiting its purge
        raise Http404("This task has been deleted.")
    grants = actor is not None and grants_unread(actor, task.project)
    arguments = [task.pk, task.project_id, actor.pk] if grants else [task.pk]
    rows: Any
    if compiled.available():
        build = partial(_task_reads, grants, outcomes)
        # The grants' SQL names the project's content type: part of the key.
        kind = ContentType.objects.get_for_model(Project).pk if grants else None
        key = ("lock_task_reads", grants, outcomes, kind)
        rows = compiled.compiled_rows(key, build, arguments)
    else:
        rows = _task_reads(grants, outcomes, *arguments)
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
    if grants:
        remember_permissions(actor, task.project, (code for _, code, _ in found["p"]))
    if outcomes:
        task._decided = {(key, replica) for replica, key, _ in found["o"]}
        task._open_verdicts = [(*keys.split("/", 1), n) for n, keys, _ in found["v"]]
    return task


def _locked(task_id: int) -> QuerySet[Task]:
    return (
        Task.objects.select_for_update(of=("self",))
        .select_related("blueprint", "project")
        .filter(pk=task_id)
    )


def _task_reads(
    grants: bool, outcomes: bool, task_id: int, project_id: int = 0, user_id: int = 0
) -> QuerySet:
    """What ``lock_task`` reads of a task besides its row, one ``UNION ALL``: its datasets,
    the people it names, the actor's grants on the project (``grants``: as
    ``core.access.grant_queries`` reads them) and, with ``outcomes``, the first attempts'
    decisions and the open verdicts. Rows (kind, number, text, time)."""
    from audits.models import ReviewOutcome

    none = Value(None, output_field=DateTimeField())
    people = [
        through.objects.filter(task_id=task_id)
        .order_by()
        .values_list(Value(kind), "user_id", Value(""), none)
        for kind, through in (("a", Task.annotators.through), ("r", Task.reviewers.through))
    ]
    reads = grant_queries(get_user_model()(pk=user_id), Project(pk=project_id)) if grants else []
    branches = [
        *people,
        *(q.values_list(Value("p"), Value(0), "codename", none) for q in reads or []),
    ]
    if outcomes:
        branches.append(
            ReviewOutcome.objects.filter(task_id=task_id, attempt=1)
            .order_by()
            .values_list(Value("o"), "replica", "stage_key", none)
        )
        # Review per annotation: the rejections and missing marks left open (by attempt).
        branches.append(
            AnnotationReview.objects.filter(task_id=task_id, verdict__in=OPEN_VERDICTS)
            .order_by()
            .values_list(
                Value("v"), "attempt", Concat("review_stage", Value("/"), "stage_key"), none
            )
        )
    return (
        Dataset.objects.filter(tasks=task_id)
        .order_by()
        .values_list(Value("d"), "pk", "name", "created_at")
        .union(*branches, all=True)
        .order_by()
    )


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
    runs_of: dict[int, list[StageRun]] = {pk: [] for pk in ids}
    for run in runs:
        run.assignee = assignees.get(run.assignee_id)
        runs_of[run.task_id].append(run)
    for task in tasks:
        remember_runs(task, runs_of[task.pk])
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
        if compiled.available():  # compiled once (core.compiled)
            runs = compiled.compiled_objects(("task_runs",), _runs_of, [task.pk])
            remember_runs(task, runs)
        else:
            prefetch_related_objects(
                [task], Prefetch("runs", queryset=StageRun.objects.select_related("assignee"))
            )
    return list(task._prefetched_objects_cache["runs"])  # type: ignore[attr-defined]


def _runs_of(task_id: int) -> QuerySet[StageRun]:
    return StageRun.objects.filter(task_id=task_id).select_related("assignee")


def remember_runs(task: Task, runs: list[StageRun]) -> None:
    """Keep ``runs`` (all of the task's) as its prefetched runs: ``task_runs`` and
    ``task.runs.all()`` answer from them, each run's ``task`` is this one."""
    for run in runs:
        run.task = task
    runs.sort(key=lambda r: r.pk)  # StageRun's ordering within a task
    found = task.runs.get_queryset()
    found._result_cache, found._prefetch_done = runs, True  # type: ignore[attr-defined]
    task.__dict__.setdefault("_prefetched_objects_cache", {})["runs"] = found


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
