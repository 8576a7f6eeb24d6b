"""Reads for tasks: who sees which task, list filters, one task with access checks."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core.access import Action, check_project_access, is_admin, project_allows
from projects.models import Membership, Project, Role

from .filters import ORDERINGS
from .models import Delivery, Priority, StageRun, Task


def user_memberships(user) -> list[tuple[int, str]]:
    """``(project id, role)`` of each of the user's memberships (one small query): read once
    by a page and handed to ``task_visibility`` and ``kept_status_counts``."""
    if not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user=user).values_list("project", "role"))


@dataclass
class ListAccess:
    """What the task list page needs to know about its user, in one query
    (``task_list_access``): their memberships, the projects they may see (the filter's
    choices: id, name, slug) and those they manage (administrators: all)."""

    memberships: list[tuple[int, str]]
    projects: list[Project]
    managed: list[Project]
    # Whether the user may create projects (the navigation's question, answered by the same
    # query); None when that query found no project of theirs and so could not say.
    can_create_project: bool | None = None


def task_list_access(*, user) -> ListAccess:
    if is_admin(user):
        seen = list(Project.objects.only("pk", "name", "slug").order_by("name", "pk"))
        return ListAccess(user_memberships(user), seen, sorted(seen, key=lambda p: p.name))
    if not user.is_authenticated:
        return ListAccess([], [], [])
    memberships: list[tuple[int, str]] = []
    seen, managed = [], []
    by_pk: dict[int, Project] = {}
    can_create = None  # the same on every row; None when there is none
    for pk, name, slug, role, visible, creates in _memberships_and_viewable(user):
        can_create = creates
        project = by_pk.get(pk)
        if project is None:
            project = Project.from_db(Project.objects.db, ["id", "name", "slug"], (pk, name, slug))
            by_pk[pk] = project
            if visible:
                seen.append(project)
        if role is not None:
            memberships.append((pk, role))
            if role == Role.MANAGER:
                managed.append(project)  # managed but not visible (a grant taken away) too
    managed.sort(key=lambda p: p.name)
    return ListAccess(memberships, seen, managed, None if can_create is None else bool(can_create))


def _memberships_and_viewable(user) -> list[tuple]:
    """``(project id, name, slug, role or None, viewable, may create projects)`` of every
    project ``user`` is a member of or may view, a row per membership (ordered by name, id):
    one query, read as the page's first. Viewable is what
    ``guardian.shortcuts.get_objects_for_user(user, "projects.view_project",
    accept_global_perms=False)`` answers — a grant of the user's own or of one of their
    groups (``tests/tasks/test_list_access.py`` compares them) — without composing
    guardian's querysets on every page (~1.5 ms of CPU). The last column, the same on every
    row, is ``projects.selectors.user_roles_and_creation``'s probe of the
    ``projects.add_project`` permission (the user's or a group's): the navigation's other
    question, so that the page asks it no second query."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from guardian.models import GroupObjectPermission, UserObjectPermission

    kind = ContentType.objects.get_for_model(Project)  # cached by Django
    project, membership = Project._meta.db_table, Membership._meta.db_table
    own, group = UserObjectPermission._meta.db_table, GroupObjectPermission._meta.db_table
    grant = Permission._meta.db_table
    groups = user.groups.through._meta.db_table
    user_grants = user.user_permissions.through._meta.db_table
    group_grants = Permission.group_set.through._meta.db_table
    types = ContentType._meta.db_table
    # Guardian's object_pk is text: the project's id compared as text, as guardian does.
    granted = f"""
        SELECT g.object_pk FROM {own} g JOIN {grant} p ON p.id = g.permission_id
         WHERE g.user_id = %(user)s AND p.codename = 'view_project'
           AND p.content_type_id = %(kind)s
        UNION ALL
        SELECT g.object_pk FROM {group} g JOIN {grant} p ON p.id = g.permission_id
         WHERE g.group_id IN (SELECT ug.group_id FROM {groups} ug WHERE ug.user_id = %(user)s)
           AND p.codename = 'view_project' AND p.content_type_id = %(kind)s"""  # noqa: S608
    creates = f"""
        SELECT 1 FROM {grant} p JOIN {types} t ON t.id = p.content_type_id
         WHERE p.codename = 'add_project' AND t.app_label = 'projects'
           AND (p.id IN (SELECT u.permission_id FROM {user_grants} u WHERE u.user_id = %(user)s)
                OR p.id IN (SELECT gp.permission_id FROM {group_grants} gp
                             JOIN {groups} ug ON ug.group_id = gp.group_id
                            WHERE ug.user_id = %(user)s))"""  # noqa: S608
    sql = f"""
        SELECT pr.id, pr.name, pr.slug, m.role, CAST(pr.id AS VARCHAR(20)) IN ({granted}),
               EXISTS ({creates})
          FROM {project} pr
          LEFT JOIN {membership} m ON m.project_id = pr.id AND m.user_id = %(user)s
         WHERE m.id IS NOT NULL OR CAST(pr.id AS VARCHAR(20)) IN ({granted})
         ORDER BY pr.name, pr.id, m.role"""  # noqa: S608 — table names from the models
    with connection.cursor() as cursor:
        cursor.execute(sql, {"user": user.pk, "kind": kind.pk})
        return cursor.fetchall()


def task_visibility(user, memberships: list[tuple[int, str]] | None = None) -> Q:
    """Managers and reviewers see their projects' tasks; annotators the tasks given to them.

    The user's projects are read first (one small query) and the filter names them as
    constants: for a manager or a reviewer the task query then has the same shape as an
    administrator's (``project_id IN (…)``, served by the (project, …) indexes), so the
    planner's estimates — and whether PostgreSQL's JIT compiles the query — do not depend on
    who asks. An annotator's tasks come through the membership join of their assignments
    (``pk IN (tasks naming them UNION tasks with a run of theirs)``), never a correlated
    EXISTS per task."""
    if is_admin(user):
        return Q()
    if not user.is_authenticated:
        return Q(pk__in=[])
    broad: set[int] = set()
    annotating: set[int] = set()
    if memberships is None:
        memberships = user_memberships(user)
    for project_id, role in memberships:
        if role in (Role.MANAGER, Role.REVIEWER):
            broad.add(project_id)
        elif role == Role.ANNOTATOR:
            annotating.add(project_id)
    annotating -= broad
    visible = Q(project_id__in=sorted(broad)) if broad else Q(pk__in=[])
    if annotating:
        visible |= Q(project_id__in=sorted(annotating), pk__in=assigned_task_ids(user))
    return visible


def assigned_task_ids(user) -> QuerySet:
    """The ids of the tasks given to ``user``: named as their annotator, or with a stage run
    of theirs (one index read each: the m2m's (user, task) and the runs' (assignee, status))."""
    named = Task.annotators.through.objects.filter(user=user).values("task_id")
    running = StageRun.objects.filter(assignee=user).values("task_id")
    return named.union(running)


def _day_start(day):
    if isinstance(day, datetime):
        return day if timezone.is_aware(day) else timezone.make_aware(day)
    return timezone.make_aware(datetime.combine(day, time.min))


def task_list_for_user(
    *, user, filters: dict | None = None, memberships: list[tuple[int, str]] | None = None
) -> QuerySet[Task]:
    """The tasks ``user`` sees, under a filter read by ``tasks.filters.task_filter``
    (``memberships``: ``user_memberships`` when the caller read them already)."""
    filters = filters or {}
    tasks = Task.objects.filter(task_visibility(user, memberships))
    if filters.get("project"):
        tasks = tasks.filter(project=filters["project"])
    if filters.get("status"):
        tasks = tasks.filter(status=filters["status"])
    if filters.get("priority"):
        tasks = tasks.filter(priority=filters["priority"])
    if filters.get("batch"):
        tasks = tasks.filter(batch=filters["batch"])
    if filters.get("assignee"):
        # The person first, then their tasks from the indexes (no OR of EXISTS per task).
        from django.contrib.auth import get_user_model

        person = (
            get_user_model()
            .objects.filter(username=filters["assignee"])
            .values_list("pk", flat=True)
            .first()
        )
        tasks = tasks.filter(pk__in=assigned_task_ids(person) if person else [])
    if filters.get("reviewer"):
        tasks = tasks.filter(
            Exists(
                Task.reviewers.through.objects.filter(
                    task=OuterRef("pk"), user__username=filters["reviewer"]
                )
            )
        )
    # Dates mean the start of that day where the user is (an aware time, so the index serves).
    if filters.get("due_before"):
        tasks = tasks.filter(due_at__lt=_day_start(filters["due_before"]))
    if filters.get("due_after"):
        tasks = tasks.filter(due_at__gte=_day_start(filters["due_after"]))
    if filters.get("overdue"):
        from projects.progress import due_cut  # the dashboards' overdue, to the minute

        tasks = tasks.filter(due_at__lt=due_cut()).exclude(
            status__in=["review_passed", "data_submitted"]
        )
    if filters.get("search"):
        from .search import search_q

        tasks = tasks.filter(search_q(filters["search"]))
    ordering = filters.get("ordering") or "-created_at"
    if ordering not in ORDERINGS:
        ordering = "-created_at"
    if ordering.lstrip("-") == "priority":  # by urgency, not alphabetically
        tasks = tasks.annotate(priority_rank=Priority.rank())
        ordering = ordering.replace("priority", "priority_rank")
    if ordering.lstrip("-") == "due_at":
        from django.db.models import F

        key = (
            F("due_at").desc(nulls_last=True)
            if ordering[0] == "-"
            else F("due_at").asc(nulls_last=True)
        )
        return with_details(tasks.order_by(key, "-pk"))
    return with_details(tasks.order_by(ordering, "-pk"))


def kept_status_counts(
    *, user, filters: dict, memberships: list[tuple[int, str]] | None = None
) -> dict[str, int] | None:
    """The tabs' counts from the kept counts (``projects.counts``: exact, one query, no
    count of the tasks) when the list is whole projects — no filter but the project and the
    status (and the order), and a user who sees every task of the projects listed (an
    administrator, or a manager or reviewer of each); None otherwise (``status_counts``)."""
    from projects import counts

    if not counts.kept() or any(k not in ("project", "status", "ordering") for k in filters):
        return None
    project = filters.get("project")
    if is_admin(user):
        ids = None if project is None else [project]
    else:
        roles: dict[int, set[str]] = {}
        if memberships is None:
            memberships = user_memberships(user)
        for project_id, role in memberships:
            roles.setdefault(project_id, set()).add(role)
        broad = {pk for pk, held in roles.items() if held & {Role.MANAGER, Role.REVIEWER}}
        if project is not None:
            if project not in broad and project in roles:
                return None  # an annotator there: only their tasks
            ids = [project] if project in broad else []
        elif len(broad) < len(roles):
            return None
        else:
            ids = sorted(broad)
    totals = counts.status_totals(ids) if ids is None or ids else {}
    return totals | {"all": sum(totals.values())}


def status_counts(tasks: QuerySet[Task]) -> tuple[dict[str, int], set[str]]:
    """Tasks per status for the tabs (``tasks``: the list under every filter except the
    status), and which of the counts are PostgreSQL's estimates (shown "about N").

    Up to ``EXACT_UP_TO`` tasks, every count is exact from one grouped count of at most that
    many index entries. Beyond, a status is PostgreSQL's estimate when that is above the
    threshold, else an exact count stopped there (those in one query), and "all" is their
    sum: a page reads a bounded number of index entries whatever the project's size (the
    grouped count of 100,000 tasks read them all on every page). Other databases count."""
    from django.core.exceptions import EmptyResultSet
    from django.db import connections

    from .models import TaskStatus
    from .pagination import EXACT_UP_TO, estimated_count

    tasks = tasks.order_by()
    connection = connections[tasks.db]
    try:  # raw SQL below: a filter that can match nothing (no projects) has no SQL at all
        tasks.query.sql_with_params()
    except EmptyResultSet:
        return {"all": 0}, set()

    def grouped(queryset: QuerySet) -> dict[str, int]:
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            # The ORM's own SQL and parameters, counted around.
            cursor.execute(f"SELECT s.status, COUNT(*) FROM ({sql}) s GROUP BY s.status", params)  # noqa: S608
            return dict(cursor.fetchall())

    def with_all(counts: dict[str, int]) -> dict[str, int]:
        return counts | {"all": sum(counts.values())}

    counts = grouped(tasks.values("status")[: EXACT_UP_TO + 1])
    if sum(counts.values()) <= EXACT_UP_TO:
        return with_all(counts), set()
    estimates = {
        status: estimated_count(tasks.filter(status=status)) for status in TaskStatus.values
    }
    if None in estimates.values():  # not PostgreSQL: no estimates
        return with_all(grouped(tasks.values("status"))), set()
    counts = {s: n for s, n in estimates.items() if n is not None and n > EXACT_UP_TO}
    estimated = set(counts)
    small = [s for s in TaskStatus.values if s not in counts]
    if small:
        parts: list[str] = []
        params: list[Any] = []
        for i, status in enumerate(small):
            sql, more = (
                tasks.filter(status=status).values("pk")[: EXACT_UP_TO + 1].query.sql_with_params()
            )
            parts.append(f"SELECT {i}, COUNT(*) FROM ({sql}) s{i}")  # noqa: S608
            params.extend(more)
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for i, n in cursor.fetchall():
                status = small[i]
                counts[status] = n
                if n > EXACT_UP_TO:  # the estimate was low: at least this many
                    estimated.add(status)
    counts = {s: n for s, n in counts.items() if n}
    return with_all(counts), estimated | ({"all"} if estimated else set())


def with_details(tasks: QuerySet[Task]) -> QuerySet[Task]:
    return tasks.select_related("blueprint", "project").prefetch_related(
        "annotators",
        "reviewers",
        "datasets",
        Prefetch("runs", queryset=StageRun.objects.select_related("assignee").order_by("id")),
        Prefetch(
            "deliveries",
            queryset=Delivery.objects.only("id", "task_id", "stage_key", "callback").order_by("id"),
        ),
    )


# What the list API shows of each task (API.md: ``GET /tasks/``), besides the related kinds.
TASK_LIST_FIELDS = (
    "project_id", "name", "description", "status", "priority", "batch", "blueprint__name",
    "blueprint__version", "metadata", "callback_url", "unique_id", "created_at", "updated_at",
    "due_at",
)  # fmt: skip
TASK_RUN_FIELDS = (
    "task_id", "stage_key", "kind", "replica", "status", "assignee__username", "attempt",
    "routed_to", "feedback", "agreement",
)  # fmt: skip
TASK_RELATED = frozenset({"datasets", "annotators", "reviewers", "runs", "callback"})


def task_rows(
    ids: list[int], *, fields: Sequence[str], related: Collection[str] = ()
) -> list[dict[str, Any]]:
    """The tasks ``ids`` as plain rows, in the order of ``ids`` (a page of the list): ``id``
    and ``fields`` (``values()`` names), and each kind of ``related`` read in one query for
    the whole page, never per task: ``datasets`` (ids, in the datasets' order),
    ``annotators`` and ``reviewers`` (usernames, in the order they were given), ``runs``
    (``TASK_RUN_FIELDS`` in the runs' order) and ``callback`` (the latest delivery's callback
    state, None without one). No model instances: a page costs its queries, not ORM work."""
    unknown = set(related) - TASK_RELATED
    if unknown:
        raise ValueError(f"Unknown related kinds: {sorted(unknown)}")
    if not ids:
        return []
    found = {
        row["id"]: row for row in Task.objects.filter(pk__in=ids).order_by().values("id", *fields)
    }
    for row in found.values():
        for kind in related:
            row[kind] = None if kind == "callback" else []
    ids = [pk for pk in ids if pk in found]
    pairs: list[tuple[str, QuerySet]] = []
    if "datasets" in related:
        linked = Task.datasets.through.objects.filter(task_id__in=ids)
        linked = linked.order_by("-dataset__created_at", "-dataset_id")  # Dataset's ordering
        pairs.append(("datasets", linked.values_list("task_id", "dataset_id")))
    for kind, people in (("annotators", Task.annotators), ("reviewers", Task.reviewers)):
        if kind in related:
            given = people.through.objects.filter(task_id__in=ids).order_by("id")
            pairs.append((kind, given.values_list("task_id", "user__username")))
    for kind, values in pairs:
        for task_id, value in values:
            found[task_id][kind].append(value)
    if "runs" in related:
        runs = StageRun.objects.filter(task_id__in=ids).order_by("id").values(*TASK_RUN_FIELDS)
        for run in runs:
            found[run["task_id"]]["runs"].append(run)
    if "callback" in related:
        deliveries = Delivery.objects.filter(task_id__in=ids).order_by("id")
        for task_id, callback in deliveries.values_list("task_id", "callback"):
            found[task_id]["callback"] = callback  # the latest wins
    return [found[pk] for pk in ids]


def task_get_for_user(*, user, task_id: int, action: Action = Action.VIEW) -> Task:
    """404 when the user may not see the task, 403 when they may not ``action`` it."""
    task = get_object_or_404(
        with_details(Task.objects.filter(task_visibility(user)).select_related("project")),
        pk=task_id,
    )
    check_project_access(user=user, project=task.project, action=action)
    return task


def task_statistics(*, task: Task) -> dict:
    """Figures for the task page: datasets, samples, annotations, time; per class/stage/author."""
    from django.db.models import Count, Sum

    from projects.models import Sample

    from .services.sampling import task_sampled_ids

    annotations = task.annotations.all()
    samples = Sample.objects.filter(dataset__in=task.datasets.all())
    labelled = annotations.filter(invalid=False).exclude(sample=None)
    sampled = task_sampled_ids(task=task)  # stages with `sampling` leave samples out
    if sampled is not None:
        samples, labelled = samples.filter(pk__in=sampled), labelled.filter(sample__in=sampled)
    total_samples = samples.count()
    annotated = labelled.values("sample").distinct().count()
    by = lambda field: list(  # noqa: E731
        annotations.values(field).annotate(n=Count("id")).order_by("-n", field)
    )
    return {
        "datasets": task.datasets.count(),
        "samples": total_samples,
        "annotated_samples": annotated,
        "percent_annotated": round(100 * annotated / total_samples) if total_samples else 0,
        "annotations": annotations.count(),
        "invalid": annotations.filter(invalid=True).count(),
        "seconds": task.runs.aggregate(s=Sum("active_seconds"))["s"] or 0,
        "by_label": by("label"),
        "by_stage": by("stage_key"),
        "by_author": by("author__username"),
    }


def task_descriptions(*, task: Task) -> list[dict]:
    """The text attributes of the task's segments (their descriptions), in time order."""
    from .services import spec_for

    spec = spec_for(task.blueprint)
    text_keys = {
        c.key: [a.key for a in c.attributes if a.type == "text"]
        for c in spec.taxonomy
        if c.kind == "segment"
    }
    segments = task.annotations.filter(kind="segment", invalid=False).select_related(
        "sample", "author"
    )
    rows = [
        {
            "annotation": a.pk,
            "sample": a.sample.name if a.sample else "",
            "label": a.label,
            "start": a.data.get("start"),
            "end": a.data.get("end"),
            "attribute": key,
            "text": a.attributes[key],
            "author": a.author.username if a.author else "",
        }
        for a in segments
        for key in text_keys.get(a.label, [])
        if a.attributes.get(key)
    ]
    rows.sort(key=lambda r: (r["sample"], r["start"] or 0))
    return rows


def hidden_annotation_ids(*, task: Task, user) -> set[int]:
    """Annotations ``user`` may not see: other annotators' consensus replicas (consensus
    work is independent). Managers and reviewers see everything."""
    if project_allows(user, task.project, Action.CHANGE) or project_allows(
        user, task.project, Action.REVIEW
    ):
        return set()
    runs = list(task.runs.filter(kind="consensus").values_list("stage_key", "replica", "assignee"))
    if not runs:
        return set()
    own = {key: replica for key, replica, assignee in runs if assignee == user.pk}
    consensus = {key for key, _, _ in runs}
    return {
        pk
        for pk, key, replica in task.annotations.filter(stage_key__in=consensus).values_list(
            "pk", "stage_key", "replica"
        )
        if own.get(key) != replica
    }


def task_addable_datasets(*, task: Task, exclude: list[int]) -> QuerySet:
    """Finished datasets of the task's project that could be linked to it."""
    from projects.models import Dataset, ImportStatus

    return Dataset.objects.filter(project=task.project, status=ImportStatus.FINISHED).exclude(
        pk__in=exclude
    )


def task_sample_list(*, task: Task) -> QuerySet:
    """The samples of the task's linked datasets, dataset by dataset, in order."""
    from projects.models import Sample

    return (
        Sample.objects.filter(dataset__in=task.datasets.all())
        .select_related("dataset")
        .order_by("dataset__name", "index")
    )


_time_limits: dict[tuple, bool] = {}


def any_time_limits() -> bool:
    """Whether any blueprint version has a stage under a ``time_limit``: without one, no
    run can be past a limit and the lazy release (``stage_release_expired``) has nothing
    to look for. One aggregate read per call; the versions' specs are read only when the
    blueprints changed (their count, newest id or latest ``updated_at``), and then only until the
    first limit is found — not every version on every load."""
    from django.db.models import Count, Max

    from blueprints.models import Blueprint
    from blueprints.validation import validate

    # The newest id too: ids are never reused, so a frozen clock cannot make two states alike.
    key = tuple(
        Blueprint.objects.aggregate(n=Count("pk"), top=Max("pk"), last=Max("updated_at")).values()
    )
    if key not in _time_limits:
        # The definitions as read (not spec_for: its cache is for the stage actions, and
        # a miss there is a query per version).
        definitions = Blueprint.objects.values_list("definition", flat=True).order_by()
        found = any(
            stage.params.time_limit
            for definition in definitions.iterator(chunk_size=100)
            for stage in validate(definition).stages
        )
        _time_limits.clear()  # one entry: the state of the blueprints now
        _time_limits[key] = found
    return _time_limits[key]


def my_work_runs(*, user) -> QuerySet[StageRun]:
    """The runs waiting for ``user`` (My work): their own open runs, free runs of tasks
    given to them, and review runs of tasks naming them as reviewer (or naming none, in a
    project where they review) — most urgent first, then by due date.

    Each part is its own index read (the runs' (assignee, status); the runs of the tasks
    naming the user, through the m2m's user index and the runs' (task, …) key; the free
    review runs of the user's reviewing projects, through (project, status, stage_key,
    kind, …)), their ids united and read first: never a scan of every unassigned run."""
    waiting = [StageRun.Status.READY, StageRun.Status.IN_PROGRESS]
    free = StageRun.objects.filter(assignee=None, status__in=waiting)
    parts = [
        StageRun.objects.filter(assignee=user, status__in=waiting).values_list("pk"),
        free.filter(
            kind__in=["annotate", "consensus"],
            task_id__in=Task.annotators.through.objects.filter(user=user).values("task_id"),
        ).values_list("pk"),
        free.filter(
            kind="review",
            task_id__in=Task.reviewers.through.objects.filter(user=user).values("task_id"),
        ).values_list("pk"),
    ]
    reviewing = list(
        Membership.objects.filter(user=user, role=Role.REVIEWER).values_list("project", flat=True)
    )
    if reviewing:
        parts.append(
            free.filter(project_id__in=reviewing, kind="review")
            .exclude(Exists(Task.reviewers.through.objects.filter(task=OuterRef("task_id"))))
            .values_list("pk")
        )
    # The ids are read first: as a subquery the planner cannot know how few they are and
    # reads every run to join them.
    united = parts[0].order_by().union(*(p.order_by() for p in parts[1:])).order_by()
    ids = [pk for (pk,) in united]
    return (
        StageRun.objects.filter(pk__in=ids)
        .select_related("task", "task__project")
        .annotate(priority_rank=Priority.rank("task__priority"))
        .order_by("-priority_rank", F("task__due_at").asc(nulls_last=True), "task_id", "id")
    )


def projects_allowing(*, user, project_ids: Collection[int], action: Action) -> set[int]:
    """Which of ``project_ids`` ``user`` may do ``action`` in (one permission check per
    project, not per task: the list decides per row whether to show ``callback_url``)."""
    from projects.models import Project

    projects = Project.objects.only("id").in_bulk(set(project_ids))
    return {pk for pk, project in projects.items() if project_allows(user, project, action)}
