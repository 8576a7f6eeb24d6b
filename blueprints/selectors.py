"""Reads for blueprints."""

from __future__ import annotations

from itertools import groupby

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from core.access import Action, check_project_access
from projects.models import Project

from .models import Blueprint


def blueprint_list(*, project: Project) -> QuerySet[Blueprint]:
    return Blueprint.objects.filter(project=project).select_related("created_by")


def blueprint_groups(*, project: Project) -> list[dict]:
    """The project's blueprints by name, newest version first, active name first."""
    rows = list(blueprint_list(project=project).order_by("name", "-version"))
    groups = [
        {"name": name, "versions": list(versions)}
        for name, versions in groupby(rows, lambda b: b.name)
    ]
    for group in groups:
        group["active"] = next((b for b in group["versions"] if b.active), None)
        group["newest"] = group["versions"][0]
    groups.sort(key=lambda g: (g["active"] is None, g["name"]))
    return groups


def active_blueprint(*, project: Project) -> Blueprint | None:
    return Blueprint.objects.filter(project=project, active=True).first()


def blueprint_get_for_user(*, user, blueprint_id: int, action: Action = Action.VIEW) -> Blueprint:
    blueprint = get_object_or_404(Blueprint.objects.select_related("project"), pk=blueprint_id)
    check_project_access(user=user, project=blueprint.project, action=action)
    return blueprint
