"""Applying the engine to a locked task: run it, store the runs that changed, derive the
status, and deliver finished work (deliveries and callbacks go out after commit)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from django.utils import timezone

from blueprints import engine

from ..models import Annotation, Delivery, StageRun, Task, TaskEvent, TaskStatus
from ..records import annotation_record
from ..tracks import expand_tracks
from .assignment import is_push, push_assign
from .base import STATUS_FIELDS, event, spec_for, task_runs, task_seed, task_transition


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
    when work is delivered, so a start or a review that decides nothing reads none."""

    def __init__(self, task: Task, given: list[Annotation] | None = None) -> None:
        self.task, self._models = task, given
        self._engine: list[engine.Annotation] | None = None

    def models(self) -> list[Annotation]:
        if self._models is None:
            self._models = list(self.task.annotations.all())
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


RUN_FIELDS = ["status", "routed_to", "reason", "completed_at"]


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
    found = TaskAnnotations(task, annotations)
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
    runs_save(pending)
    if is_push(task.project) and any(
        r.status == StageRun.Status.READY and r.assignee_id is None and r.kind != "logic"
        for r in ready
    ):  # a push project: runs that just became ready go to people at once
        push_assign(actor=None, task_ids=[task.pk], events=events)
    derived = engine.task_status(spec, nxt)
    if task.status != TaskStatus.DATA_SUBMITTED and derived != task.status:
        events.append(task_transition(task=task, to=derived, actor=actor))
        task.save(update_fields=STATUS_FIELDS)
    deliver(task, spec, nxt, events, found)


def runs_save(changed: dict[int, tuple[StageRun, set[str]]]) -> None:
    """Store changed runs, each with its changed fields, in one UPDATE."""
    if not changed:
        return
    fields = sorted(set().union(*(f for _, f in changed.values())))
    runs = [run for run, _ in changed.values()]
    if len(runs) == 1:
        runs[0].save(update_fields=fields)
    else:
        StageRun.objects.bulk_update(runs, fields)


def deliver(task, spec, after, events, annotations: TaskAnnotations | list[Annotation]) -> None:
    from ..webhooks import queue_callback

    def delivered() -> list[Annotation]:
        found = annotations.models() if isinstance(annotations, TaskAnnotations) else annotations
        return [a for a in found if a.stage_key not in skipped]

    deliveries = []
    skipped = {k for k, state in after.items() if state.status == engine.SKIPPED}
    if task.project.delivery == "task":
        if (
            task.status == TaskStatus.REVIEW_PASSED
            and not task.deliveries.filter(stage_key="").exists()
        ):
            deliveries.append(Delivery(task=task, payload=delivery_payload(task, delivered())))
    else:
        # Each annotate stage once per attempt: rework after a reject is delivered again.
        finished = [
            (key, state)
            for key, state in after.items()
            if spec.by_key[key].kind in {"annotate", "consensus"}
            and state.status == engine.COMPLETED
        ]
        done = (
            {
                (d["stage_key"], d["payload__attempt"])
                for d in task.deliveries.exclude(stage_key="").values(
                    "stage_key", "payload__attempt"
                )
            }
            if finished
            else set()
        )
        for key, state in finished:
            if (key, state.attempt) in done:
                continue
            payload = delivery_payload(
                task, [a for a in delivered() if a.stage_key == key], stage=key
            )
            payload["attempt"] = state.attempt
            deliveries.append(Delivery(task=task, stage_key=key, payload=payload))
    for delivery in deliveries:
        # Audit sampling: a reproducible draw per delivered unit (task, stage and attempt).
        attempt = delivery.payload.get("attempt", 1)
        delivery.audit_draw = engine.sample_draw(
            task_seed(task), f"audit:{delivery.stage_key}", attempt
        )
        delivery.callback = (
            Delivery.Callback.PENDING if task.callback_url else Delivery.Callback.NONE
        )
        delivery.save()
        events.append(event(task, "delivered", None, delivery.stage_key, delivery=delivery.pk))
        if task.callback_url:
            queue_callback(delivery)


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
