"""The project parts of the role dashboard at ``/``: a card per managed project
(completion, ETA, quality, alerts) and, for administrators, queue health.

Managers see a card for each project they manage, administrators for every project (the
first ``CARD_LIMIT`` by name). The cards cost a fixed number of queries however many
projects there are: the projects, their task counts, their completions of the last two
weeks (the ETAs), their stalled and idle stages, their failed exports, and the quality
rollups (``audits.selectors.quality_summaries``). Annotator- and reviewer-only users get
no cards: the dashboard lists their projects (``templates/core/_dash_projects.html``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count
from django.utils import timezone

from core.access import is_admin

from . import progress
from .models import Membership, Project, Role

logger = logging.getLogger(__name__)
CARD_LIMIT = 24
FAILED_EXPORT_DAYS = 7


@dataclass
class ProjectCard:
    project: Project
    counts: progress.TaskCounts
    eta: progress.Eta
    quality: dict[str, Any]
    stage_alerts: list[progress.StageRow] = field(default_factory=list)
    failed_exports: int = 0

    @property
    def has_alerts(self) -> bool:
        return bool(self.counts.overdue or self.stage_alerts or self.failed_exports)


def managed_projects(*, user) -> list[Project]:
    """The projects whose cards ``user`` sees: every project for administrators, those
    they manage for others (the first ``CARD_LIMIT`` by name)."""
    if not user.is_authenticated:
        return []
    projects = Project.objects.all()
    if not is_admin(user):
        managed = Membership.objects.filter(user=user, role=Role.MANAGER).values("project_id")
        projects = projects.filter(pk__in=managed)
    return list(projects.order_by("name", "pk")[:CARD_LIMIT])


def project_cards(*, projects: list[Project], now: dt.datetime | None = None) -> list[ProjectCard]:
    """A card per project: six queries for any number of projects, a seventh when some
    stage may be stalled or idle (whether its open work is older than the alert's limit),
    more only for projects whose quality rollups must be rebuilt first."""
    from audits.selectors import quality_summaries
    from queues.models import Export, ExportStatus

    if not projects:
        return []
    now = now or timezone.now()
    ids = [p.pk for p in projects]
    counts = progress.task_counts(project_ids=ids, now=now)
    etas = progress.project_etas(counts=counts, now=now)
    alerts = progress.stage_alerts(project_ids=ids, now=now)
    failed = dict(
        Export.objects.filter(
            project_id__in=ids,
            status=ExportStatus.FAILED,
            created_at__gte=now - dt.timedelta(days=FAILED_EXPORT_DAYS),
        )
        .order_by()
        .values("project_id")
        .annotate(n=Count("pk"))
        .values_list("project_id", "n")
    )
    quality = quality_summaries(projects=projects)
    return [
        ProjectCard(
            project=p,
            counts=counts[p.pk],
            eta=etas[p.pk],
            quality=quality[p.pk],
            stage_alerts=alerts[p.pk],
            failed_exports=failed.get(p.pk, 0),
        )
        for p in projects
    ]


def queue_health() -> dict[str, Any]:
    """Failed jobs and paused queues (administrators): ``{"queues", "failed", "paused",
    "error"}``; ``error`` says so when Redis cannot be read (the page still shows)."""
    from queues.control import queue_overview

    try:
        queues = queue_overview()
    except Exception as exc:  # noqa: BLE001 — Redis down must not take the dashboard down
        logger.warning("queue health unavailable: %s", exc)
        return {"queues": [], "failed": 0, "paused": [], "error": "The job queues cannot be read."}
    return {
        "queues": queues,
        "failed": sum(q["counts"]["failed"] for q in queues),
        "paused": [q["name"] for q in queues if q["paused"]],
        "error": "",
    }


def project_sections(*, user) -> dict:
    """The dashboard's project sections for ``user``: ``project_cards`` (managers and
    administrators), ``queue_health`` (administrators) and, next to cards, ``projects``:
    the user's other projects (the dashboard's list of every project otherwise)."""
    from .selectors import project_list_for_user

    cards = project_cards(projects=managed_projects(user=user))
    sections: dict[str, Any] = {"project_cards": cards}
    if cards:  # the project list below the cards: the user's other projects only
        shown = [card.project.pk for card in cards]
        sections["projects"] = project_list_for_user(user=user).exclude(pk__in=shown)[:20]
    if is_admin(user):
        sections["queue_health"] = queue_health()
    return sections
