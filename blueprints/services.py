"""Writes for blueprints: save (versioned), activate, the default for new projects."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from activity.services import activity_record
from core.access import Action, actor_user, require
from core.exceptions import ApplicationError
from projects.models import Project

from .models import Blueprint
from .validation import canonical, to_yaml, validate

logger = logging.getLogger(__name__)

EXAMPLES_DIR = Path(settings.BASE_DIR) / "examples" / "blueprints"
DEFAULT_EXAMPLE = "default"


def example_source(name: str) -> str:
    return (EXAMPLES_DIR / f"{name}.yaml").read_text()


def blueprint_in_use(blueprint: Blueprint) -> bool:
    """Whether tasks use this version (then it is immutable)."""
    tasks = getattr(blueprint, "tasks", None)
    return bool(tasks is not None and tasks.exists())


def _lock_project(project: Project) -> None:
    # Serialises version numbers and activation per project.
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _renamed_source(source: str, definition: dict) -> str:
    """The text with its top-level name set to the document's, comments kept; empty (the
    document is written out afresh) when the text cannot be edited safely."""
    if not source:
        return ""
    line = f"name: {json.dumps(definition['name'], ensure_ascii=False)}"
    if re.search(r"^name:", source, flags=re.M):
        renamed = re.sub(r"^name:.*$", line, source, count=1, flags=re.M)
    else:
        renamed = f"{line}\n{source}"
    try:
        same = canonical(yaml.safe_load(renamed)) == canonical(definition)
    except yaml.YAMLError:
        same = False
    return renamed if same else ""


@transaction.atomic
def blueprint_save(
    *,
    actor,
    project: Project,
    definition: Any,
    name: str | None = None,
    source: str = "",
    new_version: bool = False,
) -> tuple[Blueprint, bool]:
    """Save a document under ``name``. Returns (the stored version, whether it changed).

    An unchanged document changes nothing. A changed one updates the newest version in
    place, unless tasks use it or ``new_version`` asks: then it becomes version n+1,
    which takes over the active flag from its predecessor.
    """
    require(actor, project, Action.CHANGE)
    name = (name or "").strip()
    if name and isinstance(definition, dict) and definition.get("name") != name:
        # The name given beside the document (the API envelope, the editor's field) names
        # the blueprint, so the stored document says the same; its own name may be absent.
        definition = {**definition, "name": name}
        source = _renamed_source(source, definition)
    spec = validate(definition)
    name = name or spec.name.strip()
    if not name:
        raise ApplicationError("A blueprint needs a name.", field="name")
    source = source or to_yaml(definition)
    _lock_project(project)
    latest = Blueprint.objects.filter(project=project, name=name).order_by("-version").first()
    if latest is not None and canonical(latest.definition) == canonical(definition):
        if source != latest.source and not blueprint_in_use(latest):
            latest.source = source  # only comments or layout changed
            latest.save(update_fields=["source", "updated_at"])
        return latest, False
    if latest is None:
        has_active = Blueprint.objects.filter(project=project, active=True).exists()
        blueprint = Blueprint.objects.create(
            project=project,
            name=name,
            version=1,
            definition=definition,
            source=source,
            active=not has_active,
            created_by=actor_user(actor),
        )
        before, after = None, {"name": name, "version": 1, "active": blueprint.active}
    elif new_version or blueprint_in_use(latest):
        was_active = latest.active
        if was_active:
            Blueprint.objects.filter(pk=latest.pk).update(active=False)
        blueprint = Blueprint.objects.create(
            project=project,
            name=name,
            version=latest.version + 1,
            definition=definition,
            source=source,
            active=was_active,
            created_by=actor_user(actor),
        )
        before, after = {"version": latest.version}, {"version": blueprint.version}
    else:
        before, after = {"definition": latest.definition}, {"definition": definition}
        latest.definition, latest.source = definition, source
        latest.save(update_fields=["definition", "source", "updated_at"])
        blueprint = latest
    activity_record(
        actor=actor,
        verb="blueprint.saved",
        target=blueprint,
        project=project,
        before=before,
        after=after,
    )
    logger.info("blueprint %s v%s saved by %s", name, blueprint.version, actor)
    return blueprint, True


@transaction.atomic
def blueprint_activate(*, actor, blueprint: Blueprint) -> Blueprint:
    """Make this version the project's active blueprint (the one new tasks use)."""
    require(actor, blueprint.project, Action.CHANGE)
    _lock_project(blueprint.project)
    previous = (
        Blueprint.objects.filter(project=blueprint.project_id, active=True)
        .exclude(pk=blueprint.pk)
        .first()
    )
    Blueprint.objects.filter(project=blueprint.project_id, active=True).exclude(
        pk=blueprint.pk
    ).update(active=False)
    Blueprint.objects.filter(pk=blueprint.pk).update(active=True)
    if previous is not None or not blueprint.active:
        activity_record(
            actor=actor,
            verb="blueprint.activated",
            target=blueprint,
            project=blueprint.project,
            before={"active": str(previous) if previous else None},
            after={"active": str(blueprint)},
        )
    blueprint.active = True
    logger.info("blueprint %s v%s activated by %s", blueprint.name, blueprint.version, actor)
    return blueprint


def blueprint_activate_newest(*, actor, project: Project, name: str) -> Blueprint:
    require(actor, project, Action.CHANGE)
    newest = Blueprint.objects.filter(project=project, name=name).order_by("-version").first()
    if newest is None:
        raise ApplicationError(f"No blueprint named “{name}” in this project.", field="name")
    return blueprint_activate(actor=actor, blueprint=newest)


def blueprint_create_from_example(*, actor, project: Project, example: str) -> Blueprint:
    source = example_source(example)
    blueprint, _ = blueprint_save(
        actor=actor, project=project, definition=yaml.safe_load(source), source=source
    )
    return blueprint
