"""The audit trail's one write: ``activity_record``, called by the services that change
data, inside their own transaction (a rolled-back change leaves no row)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models

from core.access import actor_user
from projects.models import Project

from .models import Activity


@dataclass(frozen=True)
class Target:
    """What an action was done to, when it is not a model instance (a queue)."""

    type: str
    id: str | int
    label: str


def changed_fields(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields whose values differ, as (before, after)."""
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def _describe(target: models.Model | Target) -> tuple[str, str, str]:
    if isinstance(target, Target):
        return target.type, str(target.id), target.label
    return target._meta.model_name or "", str(target.pk), str(target)


def activity_record(
    *,
    actor,
    verb: str,
    target: models.Model | Target,
    project: Project | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> Activity:
    """Write one audit row. Call it inside the transaction of the change it describes.

    ``actor`` is a user, or the system (``core.access.SYSTEM``; stored as no one).
    """
    user = actor_user(actor)
    target_type, target_id, label = _describe(target)
    return Activity.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "",
        verb=verb,
        target_type=target_type,
        target_id=target_id,
        target_label=label[:300],
        project=project,
        project_name=project.name if project else "",
        before=dict(before) if before else None,
        after=dict(after) if after else None,
    )
