"""Writing notifications: ``notify`` for one thing that happened, ``notify_for_events`` for
what a task's history says (called once by ``tasks.services.base.save_events``, so every task
service's events are looked at in one place), ``notify_export_done`` for export jobs, and
``mark_read``.

A person is never told about what they did themselves. Notifications stay in the app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from core.access import actor_user
from core.exceptions import ApplicationError

from .models import Notification

if TYPE_CHECKING:
    from tasks.models import Task, TaskEvent

MESSAGE_LENGTH = 500
QUOTE_LENGTH = 160
MAX_IDS = 1000

# The TaskEvent kinds that tell someone something; everything else costs no query at all.
ASSIGNMENT_KINDS = {"run_assigned", "run_transferred"}
EVENT_KINDS = ASSIGNMENT_KINDS | {"stage_reopened", "commented", "audit_finding"}


@dataclass(frozen=True)
class Pending:
    """One notification to write: for ``user_id``, unless that is the actor."""

    user_id: int
    kind: str
    message: str
    url: str
    project_id: int | None = None
    task_id: int | None = None
    actor_id: int | None = None


def _quote(text: str) -> str:
    return Truncator(" ".join((text or "").split())).chars(QUOTE_LENGTH)


def _actor_names(events: list[TaskEvent]) -> dict[int, str]:
    """Who did each event: the users the events carry, the rest in one query."""
    names: dict[int, str] = {}
    missing = set()
    for e in events:
        if not e.actor_id:
            continue
        if type(e).actor.is_cached(e) and e.actor is not None:
            names[e.actor_id] = e.actor.get_username()
        else:
            missing.add(e.actor_id)
    if missing - names.keys():
        User = get_user_model()
        names.update(
            User.objects.filter(pk__in=missing - names.keys()).values_list("pk", "username")
        )
    return names


def _write(pending: Iterable[Pending]) -> list[Notification]:
    """One INSERT for them all; each person once per (kind, url) in a batch, never the actor."""
    seen: set[tuple[int, str, str]] = set()
    rows = []
    now = timezone.now()
    for p in pending:
        key = (p.user_id, p.kind, p.url)
        if p.user_id is None or p.user_id == p.actor_id or key in seen:
            continue
        seen.add(key)
        rows.append(
            Notification(
                user_id=p.user_id,
                kind=p.kind,
                message=Truncator(p.message).chars(MESSAGE_LENGTH),
                url=p.url,
                project_id=p.project_id,
                task_id=p.task_id,
                created_at=now,
            )
        )
    return Notification.objects.bulk_create(rows) if rows else []


def notify(
    *,
    recipients: Iterable[Any],
    kind: str,
    message: str,
    url: str = "",
    project=None,
    task: Task | None = None,
    actor=None,
) -> list[Notification]:
    """Tell ``recipients`` (users or user ids) that ``message``, linking to ``url``; the actor
    is left out. One query whatever the number of recipients."""
    if kind not in Notification.Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    actor_id = getattr(actor_user(actor), "pk", None)
    project_id = getattr(project, "pk", None) or (task.project_id if task is not None else None)
    return _write(
        Pending(
            user_id=getattr(r, "pk", r),
            kind=kind,
            message=message,
            url=url,
            project_id=project_id,
            task_id=task.pk if task is not None else None,
            actor_id=actor_id,
        )
        for r in recipients
    )


# --- from the task history ------------------------------------------------------------------


def _tasks_of(events: list[TaskEvent]) -> dict[int, Task]:
    """The events' tasks with their projects: those the events carry, the rest in one query."""
    from tasks.models import Task

    tasks: dict[int, Task] = {}
    missing = set()
    for e in events:
        if type(e).task.is_cached(e) and e.task.project_id:
            tasks[e.task_id] = e.task
        else:
            missing.add(e.task_id)
    if missing - tasks.keys():
        tasks.update(Task.objects.select_related("project").in_bulk(missing - tasks.keys()))
    return tasks


def _run_url(task_id: int, stage_key: str) -> str:
    if stage_key:
        return reverse("workspace:run", args=[task_id, stage_key])
    return reverse("tasks:detail", args=[task_id])


def _where(stage_key: str, task: Task) -> str:
    return f"{stage_key} of {task.name}" if stage_key else task.name


def notify_for_events(events: list[TaskEvent]) -> list[Notification]:
    """The notifications a list of task events implies, written together.

    Assigned or handed a run (``run_assigned``/``run_transferred``) → its new person; work
    sent back (``stage_reopened``, by a review's reject or a standard audit's) → the
    annotator whose run went back, with the reviewer's comment; a problem reported
    (``commented``, kind problem) → the project's managers, the task's reviewers and the
    annotators of its stage; a solution → the problem's author; an audit finding on
    someone's work (error, flag or comment; confirmations are not news) → that annotator.

    A bounded number of queries for any number of events, none when no event concerns
    anyone."""
    relevant = [e for e in events if e.kind in EVENT_KINDS]
    if not relevant:
        return []
    tasks = _tasks_of(relevant)
    names = _actor_names(relevant)
    pending: list[Pending] = []
    pending += _assignments(relevant, tasks, names, events)
    pending += _problems(relevant, tasks, names)
    pending += _findings(relevant, tasks, names)
    return _write(pending)


def _user_ids(names: set[str]) -> dict[str, int]:
    if not names:
        return {}
    User = get_user_model()
    return dict(User.objects.filter(username__in=names).values_list("username", "pk"))


def _person(value: Any, ids: dict[str, int]) -> int | None:
    """An event names a person by username (what the history shows) or by id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return _person(value.get("id") or value.get("username"), ids)
    if isinstance(value, str):
        return int(value) if value.isdigit() and value not in ids else ids.get(value)
    return None


def _assignments(relevant: list, tasks: dict, names: dict, events: list) -> list[Pending]:
    """Runs given, handed over or sent back: the person who has the run now."""
    mine = [e for e in relevant if e.kind in ASSIGNMENT_KINDS or e.kind == "stage_reopened"]
    if not mine:
        return []
    usernames: set[str] = set()
    for e in mine:
        who = e.data.get("assignee" if e.kind == "stage_reopened" else "to")
        if isinstance(who, dict):
            who = who.get("username")
        if isinstance(who, str):
            usernames.add(who)
    ids = _user_ids(usernames)
    # Why it went back: the reject's comment, or the audit that rejected, in the same list.
    reasons: dict[int, str] = {}
    for e in events:
        if e.kind == "review_rejected" and e.data.get("comment"):
            reasons[e.task_id] = _quote(e.data["comment"])
        elif e.kind == "audit_completed" and e.data.get("decision") == "reject":
            reasons.setdefault(e.task_id, f"audit #{e.data.get('audit')} found errors")
    found = []
    for e in mine:
        task = tasks.get(e.task_id)
        if task is None:
            continue
        where, actor = _where(e.stage_key, task), names.get(e.actor_id, "Someone")
        if e.kind == "stage_reopened":
            user_id = _person(e.data.get("assignee"), ids)
            reason = reasons.get(e.task_id)
            kind = Notification.Kind.REVIEW_REJECTED
            message = f"{actor} sent back {where}" + (f": {reason}" if reason else ".")
        else:
            user_id = _person(e.data.get("to"), ids)
            kind = Notification.Kind(e.kind)
            if e.kind == "run_transferred":
                reason = _quote(str(e.data.get("reason") or ""))
                message = f"{actor} handed {where} over to you" + (f": {reason}" if reason else ".")
            else:
                message = f"{actor} assigned you {where}."
        if user_id is None:
            continue
        found.append(
            Pending(
                user_id=user_id,
                kind=kind,
                message=message,
                url=_run_url(task.pk, e.stage_key),
                project_id=task.project_id,
                task_id=task.pk,
                actor_id=e.actor_id,
            )
        )
    return found


def _problems(relevant: list, tasks: dict, names: dict) -> list[Pending]:
    """Problems reported → who looks after the task; solutions → the problem's author."""
    from projects.models import Membership, Role
    from tasks.models import Comment, StageRun, Task

    wanted = {
        e.data.get("comment_id"): e
        for e in relevant
        if e.kind == "commented" and e.data.get("kind") in {"problem", "solution"}
    }
    if not wanted:
        return []
    comments = Comment.objects.select_related("parent").in_bulk([i for i in wanted if i])
    problems = [c for c in comments.values() if c.kind == Comment.Kind.PROBLEM]
    task_ids = {c.task_id for c in problems}
    watchers: dict[int, set[int]] = {t: set() for t in task_ids}
    if problems:
        project_of = {t: tasks[t].project_id for t in task_ids if t in tasks}
        managers: dict[int, set[int]] = {}
        for project_id, user_id in Membership.objects.filter(
            project_id__in=set(project_of.values()), role=Role.MANAGER
        ).values_list("project_id", "user_id"):
            managers.setdefault(project_id, set()).add(user_id)
        for t, project_id in project_of.items():
            watchers[t] |= managers.get(project_id, set())
        for t, user_id in Task.reviewers.through.objects.filter(task_id__in=task_ids).values_list(
            "task_id", "user_id"
        ):
            watchers[t].add(user_id)
        # Reviewers who took the task's reviews, and the annotators of the problem's stage.
        stage_of = {(c.task_id, c.stage_key) for c in problems if c.stage_key}
        people: dict[tuple[int, str], set[int]] = {}
        for t, key, kind, user_id in (
            StageRun.objects.filter(task_id__in=task_ids, assignee__isnull=False)
            .filter(Q(kind="review") | Q(stage_key__in={k for _, k in stage_of}))
            .values_list("task_id", "stage_key", "kind", "assignee_id")
        ):
            if kind == "review":
                watchers[t].add(user_id)
            people.setdefault((t, key), set()).add(user_id)
    found = []
    for comment_id, e in wanted.items():
        comment = comments.get(comment_id)
        task = tasks.get(e.task_id)
        if comment is None or task is None:
            continue
        url = reverse("tasks:detail", args=[task.pk]) + "#comments-heading"
        where, who = _where(comment.stage_key, task), names.get(e.actor_id, "Someone")
        if comment.kind == Comment.Kind.PROBLEM:
            recipients = watchers.get(task.pk, set())
            if comment.stage_key:
                recipients = recipients | people.get((task.pk, comment.stage_key), set())
            message = f"{who} reported a problem on {where}: {_quote(comment.body)}"
            kind = Notification.Kind.PROBLEM_REPORTED
        else:
            parent = comment.parent
            recipients = {parent.author_id} if parent and parent.author_id else set()
            message = f"{who} answered your problem on {where}: {_quote(comment.body)}"
            kind = Notification.Kind.PROBLEM_ANSWERED
        found += [
            Pending(
                user_id=user_id,
                kind=kind,
                message=message,
                url=url,
                project_id=task.project_id,
                task_id=task.pk,
                actor_id=e.actor_id,
            )
            for user_id in sorted(recipients)
        ]
    return found


def _findings(relevant: list, tasks: dict, names: dict) -> list[Pending]:
    """An audit finding → the annotator whose work it concerns."""
    from audits.models import AuditFinding

    wanted = {e.data.get("finding"): e for e in relevant if e.kind == "audit_finding"}
    if not wanted:
        return []
    findings = AuditFinding.objects.in_bulk([i for i in wanted if i])
    found = []
    for finding_id, e in wanted.items():
        finding, task = findings.get(finding_id), tasks.get(e.task_id)
        if finding is None or task is None or not finding.annotator_id:
            continue
        if finding.type == AuditFinding.Type.CONFIRMATION:
            continue
        found.append(
            Pending(
                user_id=finding.annotator_id,
                kind=Notification.Kind.AUDIT_FINDING,
                message=_finding_message(finding, names.get(e.actor_id, "An auditor"), task),
                url=reverse("tasks:detail", args=[task.pk]) + f"#audit-{finding.audit_id}-title",
                project_id=task.project_id,
                task_id=task.pk,
                actor_id=e.actor_id,
            )
        )
    return found


def _finding_message(finding, who: str, task: Task) -> str:
    where = _where(finding.stage_key, task)
    category = finding.get_category_display().lower()
    note = f": {_quote(finding.note)}" if finding.note else "."
    if finding.type == "error":
        return f"{who} found an error ({category}) in your work on {where}{note}"
    if finding.type == "flag":
        return f"{who} flagged your work on {where} ({category}){note}"
    return f"{who} commented on your work on {where}{note}"


# --- exports ----------------------------------------------------------------------------------


def notify_export_done(*, export_id: int) -> list[Notification]:
    """Tell an export's requester it is ready or failed (nothing for other states: queued,
    running, cancelled by them)."""
    from queues.models import Export, ExportStatus

    export = Export.objects.select_related("project").filter(pk=export_id).first()
    if export is None or not export.requested_by_id:
        return []
    name = f"Export v{export.version} ({export.format.upper()}) of {export.project.name}"
    if export.status == ExportStatus.FINISHED:
        kind, message = Notification.Kind.EXPORT_FINISHED, f"{name} is ready to download."
    elif export.status == ExportStatus.FAILED:
        kind = Notification.Kind.EXPORT_FAILED
        message = f"{name} failed" + (f": {_quote(export.error)}" if export.error else ".")
    else:
        return []
    return notify(
        recipients=[export.requested_by_id],
        kind=kind,
        message=message,
        url=reverse("exports:list", args=[export.project.slug]),
        project=export.project,
    )


# --- reading them ------------------------------------------------------------------------------


def _ids(value: Any) -> list[int]:
    if not isinstance(value, list | tuple):
        raise ApplicationError("ids is a list of notification ids.", field="ids")
    if len(value) > MAX_IDS:
        raise ApplicationError(f"At most {MAX_IDS} ids at once.", field="ids")
    ids = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ApplicationError("ids is a list of notification ids.", field="ids")
        try:
            number = int(item)
        except ValueError:
            raise ApplicationError("ids is a list of notification ids.", field="ids") from None
        if not 0 < number < 2**31:
            raise ApplicationError("ids is a list of notification ids.", field="ids")
        ids.append(number)
    return ids


@transaction.atomic
def mark_read(*, user, ids: Any = None, all: bool = False) -> int:
    """Mark the user's notifications read: those of ``ids``, or ``all`` of them. Others'
    ids are ignored (nobody learns whether they exist). Returns how many changed."""
    if not getattr(user, "is_authenticated", False):
        raise ApplicationError("Sign in first.")
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if not all:
        if ids is None:
            raise ApplicationError("Give the ids to mark read, or all: true.", field="ids")
        unread = unread.filter(pk__in=_ids(ids))
    return unread.update(read_at=timezone.now())
