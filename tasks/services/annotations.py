"""Annotations: create, edit, delete, mark invalid — only on a run in progress."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction

from audits.models import Audit, AuditFinding, AuditFix
from audits.rollups import quality_touch
from core.access import Action, actor_user, is_admin, project_allows
from core.exceptions import ApplicationError, Conflict

from ..models import Annotation, StageRun, Task, TaskEvent
from ..records import annotation_record
from ..tracks import TRACKED_KINDS
from ..validation import clean_attributes, clean_data
from .access import annotating_run
from .base import as_id, lock_task, spec_for, task_sample
from .prelabels import prelabel_accept_on_edit, prelabel_deleted
from .review import record_review_fix, review_fix_run
from .sampling import stage_samples

logger = logging.getLogger(__name__)
User = get_user_model()


def audit_fix_target(*, actor, task: Task, stage: str, audit_id: Any) -> Audit:
    """The open standard audit through which ``actor`` edits ``stage``'s annotations of
    ``task`` (a fix, recorded before and after): theirs, on that stage."""
    number = as_id(audit_id, "audit") or 0
    audit = Audit.objects.filter(pk=number, task=task).first()
    if audit is None:
        raise ApplicationError("No such audit of this task.", field="audit")
    if audit.kind != Audit.Kind.STANDARD or audit.status != Audit.Status.OPEN:
        raise ApplicationError("Only an open standard audit fixes annotations.", field="audit")
    if audit.stage_key != stage:
        raise ApplicationError(
            f"Audit #{audit.pk} audits “{audit.stage_key}”, not “{stage}”.", field="stage"
        )
    if actor_user(actor) is not None and audit.auditor_id != actor.pk and not is_admin(actor):
        raise PermissionDenied("Only the auditor fixes annotations in their audit.")
    return audit


def _fix(audit: Audit | None, action: str, annotation: Annotation, before: dict | None) -> None:
    if audit is not None:
        after = annotation_record(annotation) if action != AuditFix.Action.DELETE else None
        AuditFix.objects.create(
            audit=audit,
            annotation=annotation if action != AuditFix.Action.DELETE else None,
            action=action,
            before=before,
            after=after,
        )


def _delete(task: Task, annotation: Annotation) -> None:
    """Delete an annotation; the quality days of the audits whose findings named it are
    rebuilt (a finding that loses its annotation counts as an error of its own)."""
    days = list(
        AuditFinding.objects.filter(annotation=annotation, audit__completed_at__isnull=False)
        .values_list("audit__completed_at", flat=True)
        .distinct()
    )
    annotation.delete()
    if days:
        quality_touch(task.project_id, days)


TRACK_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _check_track(track: Any, task: Task, annotation: Annotation) -> str:
    """The track id ``annotation`` (not saved yet, or saved with ``pk``) joins, or a clear
    error: a track is one object, so its keyframes share stage, replica, sample, class and
    camera, and hold one keyframe per frame."""
    if track in (None, ""):
        return ""
    if not isinstance(track, str) or not TRACK_ID.fullmatch(track):
        raise ApplicationError(
            "track is an id of up to 40 letters, digits, '-' or '_'.", field="track"
        )
    if annotation.kind not in TRACKED_KINDS:
        raise ApplicationError(f"A {annotation.kind} is not tracked across frames.", field="track")
    others = (
        Annotation.objects.filter(task=task, track=track)
        .exclude(pk=annotation.pk)
        .values_list("stage_key", "replica", "sample_id", "label", "data")
    )
    mine = (annotation.stage_key, annotation.replica, annotation.sample_id, annotation.label)
    for stage, replica, sample, label, data in others:
        if (stage, replica, sample, label) != mine:
            raise ApplicationError(
                f"Track {track} is another object (a {label} of sample {sample} in “{stage}”).",
                field="track",
            )
        if data.get("camera") != annotation.data.get("camera"):
            raise ApplicationError(f"Track {track} is on another camera.", field="track")
        if data.get("frame") == annotation.data.get("frame"):
            raise ApplicationError(
                f"Track {track} already has a keyframe on frame {data.get('frame')}.",
                field="track",
            )
    return track


def _own_replica(actor, task: Task, run: StageRun, annotation: Annotation) -> None:
    """Consensus work is independent: nobody changes another replica's annotations."""
    if annotation.replica != run.replica and not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("That annotation belongs to another annotator's run.")


@transaction.atomic
def annotation_create(
    *,
    actor,
    task: Task,
    stage: str,
    label: str,
    data: Any,
    attributes: Any = None,
    sample: int | None = None,
    kind: str | None = None,
    audit: Any = None,
    track: Any = None,
) -> Annotation:
    """Add an annotation to the actor's run in progress — or, with ``audit``, to a delivered
    stage under the actor's open standard audit (a fix, recorded). ``track``: the id of
    the track it is a keyframe of (see ``tasks.tracks``)."""
    task = lock_task(task.pk, actor)
    spec = spec_for(task.blueprint)
    fixing = None
    if audit is not None:
        fixing = audit_fix_target(actor=actor, task=task, stage=stage, audit_id=audit)
        run = task.runs.filter(stage_key=stage).order_by("replica").first()
        if run is None:
            raise ApplicationError(f"The task has no stage “{stage}”.", field="stage")
    else:
        run = annotating_run(task, stage, actor)
    if label not in spec.by_key[stage].classes:
        allowed = ", ".join(spec.by_key[stage].classes)
        raise ApplicationError(
            f"Stage “{stage}” adds only {allowed}, not “{label}”.", field="label"
        )
    cls = spec.classes[label]
    if kind is not None and kind != cls.kind:
        raise ApplicationError(f"{label} is a {cls.kind}, not a {kind}.", field="kind")
    sample_obj = task_sample(task, sample) if sample is not None else None
    stage_obj = spec.by_key[stage]
    if sample_obj is not None and stage_obj.params.sampling is not None:
        if not stage_samples(task=task, stage=stage_obj, samples=[sample_obj]):
            raise ApplicationError(
                f"{sample_obj.name} is not among the samples “{stage}” annotates "
                f"(it samples {stage_obj.params.sampling:g} % of the task's samples).",
                field="sample",
            )
    annotation = Annotation(
        task=task,
        stage_key=stage,
        replica=run.replica,
        sample=sample_obj,
        label=label,
        kind=cls.kind,
        data=clean_data(cls, data, sample_obj),
        attributes=clean_attributes(cls, attributes),
        author=actor_user(actor),
    )
    annotation.track = _check_track(track, task, annotation)
    annotation.save(force_insert=True)
    _fix(fixing, AuditFix.Action.CREATE, annotation, None)
    return annotation


@transaction.atomic
def annotation_update(
    *,
    actor,
    annotation: Annotation,
    version: Any,
    data: Any = None,
    attributes: Any = None,
    invalid: bool | None = None,
    invalid_reason: str | None = None,
    audit: Any = None,
    track: Any = None,
    review: Any = None,
) -> Annotation:
    """Change an annotation; ``version`` must be the one the editor saw (else 409). With
    ``audit``: a fix under the actor's open standard audit, recorded before and after. With
    ``review`` (a review stage with ``allow_fixes``, the actor's run in progress): a
    reviewer's fix in place, recorded before and after.
    ``track``: join that track (``""`` leaves its track)."""
    task = lock_task(annotation.task_id, actor)
    locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ApplicationError("Send the version you edited.", field="version")
    if version != locked.version:
        raise Conflict(
            "Someone changed this annotation meanwhile: nothing was overwritten.",
            extra={"version": locked.version, "current": annotation_record(locked)},
        )
    spec = spec_for(task.blueprint)
    cls = spec.classes[locked.label]
    only_flag = data is None and attributes is None and track is None
    fixing = None
    before = annotation_record(locked)
    if audit is not None:
        fixing = audit_fix_target(actor=actor, task=task, stage=locked.stage_key, audit_id=audit)
    elif review is not None:
        review_fix_run(actor=actor, task=task, stage_key=locked.stage_key, review_stage=review)
    elif only_flag and invalid is not None:
        allowed = project_allows(actor, task.project, Action.REVIEW) or project_allows(
            actor, task.project, Action.CHANGE
        )
        if not allowed:
            annotating_run(task, locked.stage_key, actor)
    else:
        run = annotating_run(task, locked.stage_key, actor)
        _own_replica(actor, task, run, locked)
    if data is not None:
        locked.data = clean_data(cls, data, locked.sample)
    if attributes is not None:
        locked.attributes = clean_attributes(cls, attributes)
    if track is not None or (data is not None and locked.track):
        locked.track = _check_track(locked.track if track is None else track, task, locked)
    if data is not None or attributes is not None:
        prelabel_accept_on_edit(actor=actor, annotation=locked)  # editing accepts a pre-label
    if invalid is not None:
        if invalid and not (invalid_reason or "").strip():
            raise ApplicationError("Say why it is invalid.", field="invalid_reason")
        locked.invalid, locked.invalid_reason = (
            bool(invalid),
            (invalid_reason or "").strip() if invalid else "",
        )
    locked.version += 1
    locked.save()
    _fix(fixing, AuditFix.Action.UPDATE, locked, before)
    if review is not None:
        record_review_fix(
            actor=actor,
            task=task,
            review_stage=review,
            action="update",
            before=before,
            after=annotation_record(locked),
        )
    return locked


@transaction.atomic
def annotation_delete(
    *, actor, annotation: Annotation, version: Any = None, audit: Any = None, review: Any = None
) -> None:
    """Delete an annotation of the actor's run in progress — or, with ``audit`` or ``review``
    (see ``annotation_update``), a fix in place, recorded with what it was."""
    task = lock_task(annotation.task_id, actor)
    locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if version is not None and version != locked.version:
        raise Conflict(
            "Someone changed this annotation meanwhile: nothing was deleted.",
            extra={"version": locked.version},
        )
    if audit is not None:
        fixing = audit_fix_target(actor=actor, task=task, stage=locked.stage_key, audit_id=audit)
        _fix(fixing, AuditFix.Action.DELETE, locked, annotation_record(locked))
    elif review is not None:
        review_fix_run(actor=actor, task=task, stage_key=locked.stage_key, review_stage=review)
        record_review_fix(
            actor=actor,
            task=task,
            review_stage=review,
            action="delete",
            before=annotation_record(locked),
            after=None,
        )
    else:
        run = annotating_run(task, locked.stage_key, actor)
        _own_replica(actor, task, run, locked)
        prelabel_deleted(actor=actor, annotation=locked)
    _delete(task, locked)


@transaction.atomic
def annotation_manage_invalid(*, actor, annotation: Annotation, restore: bool) -> None:
    """A manager restores an annotation marked invalid, or deletes it; one event."""
    task = lock_task(annotation.task_id, actor)
    if not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("Only managers restore or delete invalid annotations.")
    locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if not locked.invalid:
        raise ApplicationError("That annotation is not marked invalid.", field="annotation")
    if restore:
        locked.invalid, locked.invalid_reason = False, ""
        locked.version += 1
        locked.save()
    else:
        _delete(task, locked)
    TaskEvent.objects.create(
        task=task,
        kind="annotation_restored" if restore else "annotation_deleted",
        actor=actor,
        stage_key=annotation.stage_key,
        data={"annotation": annotation.pk, "label": annotation.label},
    )
