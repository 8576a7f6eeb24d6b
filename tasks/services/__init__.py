"""Task lifecycle: creation, stage actions, annotations — each a transaction that locks
the task row, calls the pure engine (blueprints.engine), stores the runs and the status,
and writes a TaskEvent for every change. Deliveries and callbacks go out after commit.

One module per concern; callers import the public services from here."""

from .annotations import (
    annotation_create,
    annotation_delete,
    annotation_manage_invalid,
    annotation_update,
)
from .assignment import (
    assignable_people,
    auto_assign_apply,
    auto_assign_plan,
    run_assign,
)
from .base import TRANSITIONS, spec_for, task_transition
from .comments import comment_create, comment_resolve
from .creation import (
    task_create,
    task_create_ids,
    task_create_many,
    task_datasets_change,
    task_delete,
    task_mark_submitted,
    task_update,
)
from .eligibility import open_load, run_eligibility
from .samples import changed_samples, sample_mark_invalid, sample_restore, task_samples_sync
from .sampling import stage_samples, task_sampled_ids
from .stages import stage_claim_next, stage_review, stage_start, stage_submit
from .sync import delivery_payload
from .timing import (
    run_timing,
    stage_activity,
    stage_release_expired,
    stage_released_from,
)

__all__ = [
    "assignable_people",
    "auto_assign_apply",
    "auto_assign_plan",
    "run_assign",
    "TRANSITIONS",
    "annotation_create",
    "annotation_delete",
    "annotation_manage_invalid",
    "annotation_update",
    "changed_samples",
    "comment_create",
    "comment_resolve",
    "delivery_payload",
    "run_timing",
    "sample_mark_invalid",
    "sample_restore",
    "spec_for",
    "stage_activity",
    "stage_claim_next",
    "stage_release_expired",
    "stage_released_from",
    "stage_review",
    "stage_samples",
    "stage_start",
    "stage_submit",
    "task_create",
    "task_create_ids",
    "task_create_many",
    "task_datasets_change",
    "task_delete",
    "task_mark_submitted",
    "task_sampled_ids",
    "task_samples_sync",
    "task_transition",
    "task_update",
    "open_load",
    "run_eligibility",
]
