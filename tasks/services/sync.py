"""Applying the engine to a locked task: run it, store the runs that changed, derive the
status, and deliver finished work (deliveries and callbacks go out after commit)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.utils import timezone

from blueprints import engine
from blueprints.spec import BlueprintSpec

from ..models import Annotation, Delivery, StageRun, Task, TaskEvent, TaskStatus
from ..records import annotation_record
from ..tracks import expand_tracks
from .assignment import is_push, push_assign
from .base import STATUS_FIELDS, event, spec_for, task_runs, task_seed, task_transition
from .bulk import copy_available, id_set, update_rows


def task_facts(
    task: Task, assignees: dict[str, tuple[str, ...]], active_seconds: float
) -> engine.TaskFacts:
    datasets = tuple(str(v) for d in getattr(task, "_dataset_list", []) for v in (d.pk, d.name))
    return engine.TaskFacts(
        seed=task_seed(task),
        annotators=assignees,
        batch=task.batch,
        datasets=datasets,
        active_seconds=active_seconds,
    )


def aggregate_runs(runs: list[StageRun]) -> engine.Run:
    """One engine run per stage; a consensus stage is complete when every replica is."""
    first = runs[0]
    statuses = {r.status for r in runs}
    status = first.status
    if len(runs) > 1:
        if statuses == {StageRun.Status.COMPLETED} or statuses == {StageRun.Status.SUBMITTED}:
            status = (
                StageRun.Status.COMPLETED
                if statuses == {StageRun.Status.COMPLETED}
                else StageRun.Status.SUBMITTED
            )
        elif StageRun.Status.IN_PROGRESS in statuses or StageRun.Status.SUBMITTED in statuses:
            status = StageRun.Status.IN_PROGRESS
        elif StageRun.Status.READY in statuses:
            status = StageRun.Status.READY
    return engine.Run(
        status=status,
        attempt=first.attempt,
        routed_to=first.routed_to or None,
        reason=first.reason,
        rejected=any(r.rejected for r in runs),
    )


def engine_annotations(annotations: Iterable[Annotation]) -> list[engine.Annotation]:
    return [
        engine.Annotation(
            stage=a.stage_key,
            label=a.label,
            value=a.data.get("value"),
            attributes=a.attributes,
            invalid=a.invalid,
        )
        for a in annotations
    ]


class TaskAnnotations(Sequence):
    """The task's annotations, read when first asked (once): the engine looks at them only
    to decide a stage (a ``when`` condition, a logic stage's rules) and the delivery only
    when work is delivered, so a start or a review that decides nothing reads none.
    ``loader``: reads them (a batch's ``BatchAnnotations`` reads every task's at once)."""

    def __init__(
        self,
        task: Task,
        given: list[Annotation] | None = None,
        loader: Callable[[Task], list[Annotation]] | None = None,
    ) -> None:
        self.task, self._models, self._loader = task, given, loader
        self._engine: list[engine.Annotation] | None = None

    def models(self) -> list[Annotation]:
        if self._models is None:
            loader = self._loader
            self._models = loader(self.task) if loader else list(self.task.annotations.all())
        return self._models

    def _for_engine(self) -> list[engine.Annotation]:
        if self._engine is None:
            self._engine = engine_annotations(self.models())
        return self._engine

    def __getitem__(self, index):
        return self._for_engine()[index]

    def __len__(self) -> int:
        return len(self._for_engine())

    def __iter__(self) -> Iterator[engine.Annotation]:
        return iter(self._for_engine())


class BatchAnnotations:
    """The annotations of a batch's tasks, read in one query the first time any task's are
    asked for (then none for the others): ``TaskAnnotations(task, loader=batch)``."""

    def __init__(self, task_ids: Iterable[int]) -> None:
        self.task_ids = list(task_ids)
        self._by_task: dict[int, list[Annotation]] | None = None

    def __call__(self, task: Task) -> list[Annotation]:
        if self._by_task is None:
            self._by_task = {pk: [] for pk in self.task_ids}
            for a in Annotation.objects.filter(task_id__in=id_set(self.task_ids)):
                self._by_task.setdefault(a.task_id, []).append(a)
        return self._by_task.get(task.pk, [])


RUN_FIELDS = ["status", "routed_to", "reason", "completed_at"]


@dataclass
class Synced:
    """What the engine decided for one locked task, not yet written (``sync_plan``)."""

    task: Task
    spec: BlueprintSpec
    after: dict[str, engine.Run]
    runs: dict[int, tuple[StageRun, set[str]]]
    annotations: TaskAnnotations
    push: bool  # a push project whose runs just became ready unreserved


def sync_task(
    task: Task,
    actor,
    events: list[TaskEvent],
    *,
    annotations: list[Annotation] | None = None,
    changed: dict[int, tuple[StageRun, set[str]]] | None = None,
) -> None:
    """Run the engine on the locked task, store what changed, derive the status.

    The runs are the task's shared read (``task_runs``), so what the calling service changed
    in them is what the engine sees; ``changed``: the runs the service changed and not yet
    saved, with their fields — stored here with the engine's changes, in one UPDATE.
    ``annotations``: the task's annotations when the service read them already."""
    syncs_write([sync_plan(task, events, annotations=annotations, changed=changed)], actor, events)


def sync_plan(
    task: Task,
    events: list[TaskEvent],
    *,
    annotations: list[Annotation] | None = None,
    changed: dict[int, tuple[StageRun, set[str]]] | None = None,
    loader: Callable[[Task], list[Annotation]] | None = None,
) -> Synced:
    """The engine's step on the locked task (as ``sync_task``), in memory: the runs it
    changes (with the caller's ``changed``) and an event each; ``syncs_write`` writes it."""
    spec = spec_for(task.blueprint)
    runs = task_runs(task)
    pending: dict[int, tuple[StageRun, set[str]]] = dict(changed or {})
    by_stage: dict[str, list[StageRun]] = {}
    for run in runs:
        by_stage.setdefault(run.stage_key, []).append(run)
    current = {key: aggregate_runs(group) for key, group in by_stage.items()}
    # Who annotated (annotate and consensus work only: a reviewer is not an annotator).
    assignees = {
        key: tuple(r.assignee.username for r in group if r.assignee_id and r.assignee)
        for key, group in by_stage.items()
        if group[0].kind in {"annotate", "consensus"}
    }
    active = sum(r.active_seconds for r in runs if r.kind in {"annotate", "consensus"})
    found = TaskAnnotations(task, annotations, loader)
    nxt = engine.advance(spec, current, found, task_facts(task, assignees, active))
    ready = []
    for key, state in nxt.items():
        if state == current[key]:
            continue
        for run in by_stage[key]:
            if state.status in {
                StageRun.Status.READY,
                StageRun.Status.SKIPPED,
                StageRun.Status.COMPLETED,
            } and run.status in {StageRun.Status.BLOCKED, StageRun.Status.READY}:
                run.status, run.routed_to, run.reason = (
                    state.status,
                    state.routed_to or "",
                    state.reason,
                )
                if state.status == StageRun.Status.COMPLETED:
                    run.completed_at = timezone.now()
                pending.setdefault(run.pk, (run, set()))[1].update(RUN_FIELDS)
                ready.append(run)
        kind = f"stage_{state.status}"
        data = {"reason": state.reason}
        if state.routed_to:
            kind, data = "stage_routed", {"to": state.routed_to, "reason": state.reason}
        events.append(event(task, kind, None, key, **data))
    push = is_push(task.project) and any(
        r.status == StageRun.Status.READY and r.assignee_id is None and r.kind != "logic"
        for r in ready
    )
    return Synced(task, spec, nxt, pending, found, push)


def syncs_write(plans: list[Synced], actor, events: list[TaskEvent]) -> None:
    """Write the engine's steps of locked tasks (``sync_plan``), whatever their number, in a
    bounded number of statements: the runs in one UPDATE, a push project's newly ready runs
    given out together, the statuses derived (an event each) in one UPDATE, the finished
    work delivered (``deliver_many``)."""
    pending: dict[int, tuple[StageRun, set[str]]] = {}
    for plan in plans:
        pending.update(plan.runs)
    runs_save(pending)
    pushed = [plan.task.pk for plan in plans if plan.push]
    if pushed:  # a push project: runs that just became ready go to people at once
        push_assign(actor=None, task_ids=pushed, events=events)
    moved = []
    for plan in plans:
        task, derived = plan.task, engine.task_status(plan.spec, plan.after)
        if task.status != TaskStatus.DATA_SUBMITTED and derived != task.status:
            events.append(task_transition(task=task, to=derived, actor=actor))
            moved.append(task)
    tasks_save_status(moved)
    deliver_many(plans, events)


def tasks_save_status(tasks: list[Task]) -> None:
    """Store the status columns (``STATUS_FIELDS``) of locked tasks, in one UPDATE."""
    if not tasks:
        return
    if not copy_available():
        for task in tasks:
            task.save(update_fields=STATUS_FIELDS)
        return
    now = timezone.now()
    for task in tasks:
        task.updated_at = now  # auto_now, as save() would
    update_rows(Task, tasks, STATUS_FIELDS)


def runs_save(changed: dict[int, tuple[StageRun, set[str]]]) -> None:
    """Store changed runs, each with its changed fields, in one UPDATE."""
    if not changed:
        return
    fields = sorted(set().union(*(f for _, f in changed.values())))
    runs = [run for run, _ in changed.values()]
    if copy_available():  # one UPDATE … FROM unnest(…): no SQL compiled per call
        update_rows(StageRun, runs, fields)
    elif len(runs) == 1:
        runs[0].save(update_fields=fields)
    else:
        StageRun.objects.bulk_update(runs, fields)


def deliver_many(plans: list[Synced], events: list[TaskEvent]) -> None:
    """Deliveries of the tasks' finished work: the whole task once it passed (task-level
    delivery) or each annotate stage once per attempt (stage-level); what was delivered
    already is read in one query, the new deliveries written in one INSERT, an event each,
    their callbacks sent after commit."""
    from ..webhooks import queue_callback

    due: list[tuple[Synced, list[tuple[str, engine.Run]]]] = []
    whole: list[Synced] = []
    for plan in plans:
        task = plan.task
        if task.project.delivery == "task":
            if task.status == TaskStatus.REVIEW_PASSED:
                whole.append(plan)
            continue
        finished = [
            (key, state)
            for key, state in plan.after.items()
            if plan.spec.by_key[key].kind in {"annotate", "consensus"}
            and state.status == engine.COMPLETED
        ]
        if finished:
            due.append((plan, finished))
    if not whole and not due:
        return
    delivered = Delivery.objects.filter(
        task_id__in=id_set([p.task.pk for p in whole] + [p.task.pk for p, _ in due])
    ).order_by()
    whole_done = set(
        delivered.filter(stage_key="").values_list("task_id", flat=True) if whole else ()
    )
    # Each annotate stage once per attempt: rework after a reject is delivered again.
    stage_done = set(
        delivered.exclude(stage_key="").values_list("task_id", "stage_key", "payload__attempt")
        if due
        else ()
    )
    deliveries: list[Delivery] = []
    for plan in whole:
        if plan.task.pk not in whole_done:
            payload = delivery_payload(plan.task, _delivered(plan))
            deliveries.append(Delivery(task=plan.task, payload=payload))
    for plan, finished in due:
        for key, state in finished:
            if (plan.task.pk, key, state.attempt) in stage_done:
                continue
            work = [a for a in _delivered(plan) if a.stage_key == key]
            payload = delivery_payload(plan.task, work, stage=key)
            payload["attempt"] = state.attempt
            deliveries.append(Delivery(task=plan.task, stage_key=key, payload=payload))
    for delivery in deliveries:
        task = delivery.task
        # Audit sampling: a reproducible draw per delivered unit (task, stage and attempt).
        attempt = delivery.payload.get("attempt", 1)
        delivery.audit_draw = engine.sample_draw(
            task_seed(task), f"audit:{delivery.stage_key}", attempt
        )
        delivery.callback = (
            Delivery.Callback.PENDING if task.callback_url else Delivery.Callback.NONE
        )
    if len(deliveries) == 1:
        deliveries[0].save()
    else:
        Delivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        events.append(
            event(delivery.task, "delivered", None, delivery.stage_key, delivery=delivery.pk)
        )
        if delivery.task.callback_url:
            queue_callback(delivery)


def _delivered(plan: Synced) -> list[Annotation]:
    """The task's annotations a delivery carries: not those of skipped stages."""
    skipped = {k for k, state in plan.after.items() if state.status == engine.SKIPPED}
    return [a for a in plan.annotations.models() if a.stage_key not in skipped]


def delivery_payload(task: Task, annotations: list[Annotation], stage: str = "") -> dict:
    return {
        "task": task.pk,
        "unique_id": task.unique_id or None,
        "name": task.name,
        "project": task.project_id,
        "blueprint": {"name": task.blueprint.name, "version": task.blueprint.version},
        "stage": stage or None,
        "status": task.status,
        "metadata": task.metadata,
        "datasets": [d.pk for d in getattr(task, "_dataset_list", [])],
        # Tracks frame by frame, as the exports write them (in-between frames: id null).
        "annotations": [annotation_record(a) for a in expand_tracks(annotations) if not a.invalid],
    }
