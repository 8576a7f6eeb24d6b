"""Writes for projects and memberships. Each function is one user action."""

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from activity.services import Target, activity_record, changed_fields
from core.access import ROLE_PERMISSIONS, Action, actor_user, permissions_for_roles, require
from core.exceptions import ApplicationError, Conflict

from .models import Assignment, Delivery, Guideline, Membership, Project, Role
from .selectors import AUDIT_KINDS, assignment_mode, robot_type

if TYPE_CHECKING:
    from blueprints.models import Blueprint

logger = logging.getLogger(__name__)
User = get_user_model()

ALL_ROLE_PERMISSIONS = frozenset().union(*ROLE_PERMISSIONS.values())


def _unique_slug(name: str, wanted: str | None) -> str:
    base = slugify(wanted or name)[:70] or "project"
    if wanted and Project.objects.filter(slug=base).exists():
        raise ApplicationError(f"The address “{base}” is taken by another project.", field="slug")
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _clean_skills(skills: Iterable[str] | None) -> list[str]:
    cleaned: list[str] = []
    for skill in skills or []:
        if not isinstance(skill, str):
            raise ApplicationError("Skills must be words, such as “robotics”.", field="skills")
        skill = skill.strip().lower()
        if skill and skill not in cleaned:
            cleaned.append(skill)
    return cleaned


def _validate_delivery(delivery: str) -> None:
    if delivery not in Delivery.values:
        raise ApplicationError(
            f"Delivery must be one of {', '.join(Delivery.values)}.", field="delivery"
        )


def _sync_permissions(*, project: Project, user) -> None:
    """Make the user's guardian grants on ``project`` match their memberships."""
    roles = Membership.objects.filter(project=project, user=user).values_list("role", flat=True)
    wanted = permissions_for_roles(roles)
    held = (
        set(
            UserObjectPermission.objects.filter(
                user=user,
                content_type__app_label="projects",
                content_type__model="project",
                object_pk=str(project.pk),
            ).values_list("permission__codename", flat=True)
        )
        & ALL_ROLE_PERMISSIONS
    )
    for codename in wanted - held:
        assign_perm(f"projects.{codename}", user, project)
    for codename in held - wanted:
        remove_perm(f"projects.{codename}", user, project)
    # The access layer caches permissions on the instance; the grants just moved.
    project.__dict__.pop("_permission_cache", None)


@transaction.atomic
def project_create(
    *,
    actor,
    name: str,
    description: str = "",
    delivery: str = Delivery.TASK,
    slug: str | None = None,
) -> Project:
    """Create a project; its creator becomes its first manager; it starts with the default
    blueprint (annotate → review) as its active one."""
    require(actor, None, Action.CREATE_PROJECT)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A project needs a name.", field="name")
    _validate_delivery(delivery)
    for attempt in range(3):
        try:
            with transaction.atomic():  # a savepoint: a slug taken meanwhile is retried
                project = Project.objects.create(
                    name=name,
                    slug=_unique_slug(name, slug),
                    description=description or "",
                    delivery=delivery,
                    created_by=actor_user(actor),
                )
            break
        except IntegrityError:
            if slug or attempt == 2:
                raise ApplicationError(
                    "That address was just taken; try again.", field="slug"
                ) from None

    if actor_user(actor) is not None:
        # Not membership_add: the creator may act in the project only from here on.
        _membership_put(project=project, user=actor, role=Role.MANAGER)
    activity_record(
        actor=actor,
        verb="project.created",
        target=project,
        project=project,
        after={"name": project.name, "slug": project.slug, "delivery": project.delivery},
    )
    from blueprints.services import DEFAULT_EXAMPLE, blueprint_create_from_example

    blueprint_create_from_example(actor=actor, project=project, example=DEFAULT_EXAMPLE)
    logger.info("project %s created by %s", project.slug, actor)
    return project


ROBOT_TYPE = re.compile(r"[A-Za-z0-9_.\-]{0,100}")


@transaction.atomic
def project_update(
    *,
    actor,
    project: Project,
    version: int | None = None,
    **fields,
) -> Project:
    """Change name, description or delivery. ``version`` guards against stale forms."""
    require(actor, project, Action.CHANGE)
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if version is not None and version != locked.version:
        raise Conflict(
            "Someone else changed this project since you opened it. "
            "Review the current values and save again.",
            extra={"version": locked.version},
        )
    allowed = {"name", "description", "delivery", "assignment", "robot_type"}
    unknown = set(fields) - allowed
    if unknown:
        raise ApplicationError(f"Unknown field: {', '.join(sorted(unknown))}.")
    stored = locked.settings if isinstance(locked.settings, dict) else {}
    settings_changed: dict[str, tuple[Any, Any]] = {}
    if "assignment" in fields:  # stored in settings: pull (Start next task) or push
        mode = fields.pop("assignment") or assignment_mode(locked)  # empty: unchanged
        if mode not in Assignment.values:
            raise ApplicationError("assignment is pull or push.", field="assignment")
        if assignment_mode(locked) != mode:
            settings_changed["assignment"] = (assignment_mode(locked), mode)
    if "robot_type" in fields:  # stored in settings: what LeRobot exports name the robot
        robot = (fields.pop("robot_type") or "").strip()
        if not ROBOT_TYPE.fullmatch(robot):
            raise ApplicationError(
                "robot_type is up to 100 letters, digits, _ . or - (empty: unset).",
                field="robot_type",
            )
        if robot_type(locked) != robot:
            settings_changed["robot_type"] = (robot_type(locked), robot)
    if settings_changed:
        fields["settings"] = {**stored, **{k: v for k, (_, v) in settings_changed.items()}}
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"]:
            raise ApplicationError("A project needs a name.", field="name")
    if "delivery" in fields:
        _validate_delivery(fields["delivery"])
    changed = [key for key, value in fields.items() if getattr(locked, key) != value]
    if changed:
        before = {key: getattr(locked, key) for key in changed}
        after = {key: fields[key] for key in changed}
        if "settings" in changed:  # the activity log names the settings, not the whole dict
            for key, (was, now) in settings_changed.items():
                before[key], after[key] = was, now
            del before["settings"], after["settings"]
        for key in changed:
            setattr(locked, key, fields[key])
        locked.version += 1
        locked.save(update_fields=[*changed, "version", "updated_at"])
        activity_record(
            actor=actor,
            verb="project.updated",
            target=locked,
            project=locked,
            before=before,
            after=after,
        )
        logger.info("project %s changed by %s: %s", locked.slug, actor, ", ".join(changed))
    return locked


@transaction.atomic
def project_delete(*, actor, project: Project) -> None:
    """Delete an empty project: its members, blueprints, guidelines and export records go
    with it. Tasks and datasets are work: a project that holds any is refused."""
    require(actor, project, Action.CHANGE)
    from tasks.models import Task
    from tasks.services.deletion import tasks_purge_deleted

    locked = Project.objects.select_for_update().get(pk=project.pk)
    tasks, datasets = locked.tasks.count(), locked.datasets.count()
    if tasks or datasets:
        raise ApplicationError(
            f"“{locked.name}” still has {tasks} task(s) and {datasets} dataset(s): "
            "delete them first.",
            field="project",
        )
    # Its deleted tasks awaiting their purge go now, set-based (not through the collector
    # below, one object at a time); a purge job holding some of them right now is waited
    # for by no one: the project is refused until it has finished.
    tasks_purge_deleted(project_id=locked.pk)
    if Task.all_objects.filter(project=locked).exists():
        raise ApplicationError(
            f"“{locked.name}”'s deleted tasks are being removed: try again in a minute.",
            field="project",
        )
    activity_record(
        actor=actor,
        verb="project.deleted",
        target=locked,
        project=locked,
        before={"name": locked.name, "slug": locked.slug},
    )
    slug, pk = locked.slug, locked.pk
    locked.delete()
    # Object permissions point at the project by text, not by a foreign key.
    UserObjectPermission.objects.filter(
        content_type__app_label="projects", content_type__model="project", object_pk=str(pk)
    ).delete()
    transaction.on_commit(lambda: _delete_project_files(slug, pk))
    logger.info("project %s deleted by %s", project.slug, actor)


def _delete_project_files(slug: str, project_id: int) -> None:
    """A deleted project's exports and pre-label imports in the data storage."""
    from queues.services import export_delete_project_files
    from tasks.services.prelabels import prelabel_files_delete

    export_delete_project_files(slug)
    try:
        prelabel_files_delete(project_id=project_id)
    except Exception:  # the storage is down: leftovers nobody reads, said in the log
        logger.exception("pre-label files of project %s: could not remove them", project_id)


def _get_user(username: str):
    try:
        return User.objects.get(username=username.strip(), is_active=True)
    except User.DoesNotExist:
        raise ApplicationError(f"No active user is named “{username}”.", field="username") from None


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ApplicationError(f"Role must be one of {', '.join(Role.values)}.", field="role")


def _ensure_other_manager(membership: Membership) -> None:
    if membership.role != Role.MANAGER:
        return
    # Two managers removing each other at once must not both succeed: serialise on the project.
    Project.objects.select_for_update().filter(pk=membership.project_id).first()
    others = Membership.objects.filter(project=membership.project_id, role=Role.MANAGER).exclude(
        pk=membership.pk
    )
    if not others.exists():
        raise ApplicationError(
            "A project needs at least one manager: add another manager first.", field="role"
        )


def _membership_label(membership: Membership) -> Target:
    return Target("membership", membership.pk, f"{membership.user} as {membership.role}")


def _membership_facts(membership: Membership) -> dict:
    return {
        "user": membership.user.username,
        "role": membership.role,
        "skills": list(membership.skills),
        "capacity": membership.capacity,
    }


def _membership_put(*, project: Project, user, role: str, **defaults) -> tuple[Membership, bool]:
    membership, created = Membership.objects.update_or_create(
        project=project, user=user, role=role, defaults=defaults
    )
    _sync_permissions(project=project, user=user)
    return membership, created


@transaction.atomic
def membership_add(
    *,
    actor,
    project: Project,
    role: str,
    user=None,
    username: str | None = None,
    skills: Iterable[str] | None = None,
    capacity: int | None = None,
) -> tuple[Membership, bool]:
    """Give a user a role in the project. Returns (membership, created).

    Adding a role the user already holds updates its skills and capacity.
    """
    require(actor, project, Action.CHANGE)
    _validate_role(role)
    if user is None:
        user = _get_user(username or "")
    if capacity is not None and capacity < 0:
        raise ApplicationError("Capacity cannot be negative.", field="capacity")
    defaults: dict = {}
    if skills is not None:
        defaults["skills"] = _clean_skills(skills)
    if capacity is not None:
        defaults["capacity"] = capacity
    held = Membership.objects.filter(project=project, user=user, role=role).first()
    membership, created = _membership_put(project=project, user=user, role=role, **defaults)
    before: dict[str, object]
    if created or held is None:
        before, after = {}, _membership_facts(membership)
    else:
        before, after = changed_fields(_membership_facts(held), _membership_facts(membership))
    if after:
        activity_record(
            actor=actor,
            verb="membership.added" if created else "membership.changed",
            target=_membership_label(membership),
            project=project,
            before=before,
            after=after,
        )
    logger.info(
        "%s %s %s as %s of %s", actor, "added" if created else "updated", user, role, project
    )
    return membership, created


@transaction.atomic
def membership_update(
    *,
    actor,
    membership: Membership,
    role: str | None = None,
    skills: Iterable[str] | None = None,
    capacity: int | None = None,
) -> Membership:
    """Change a member's role, skills or capacity."""
    require(actor, membership.project, Action.CHANGE)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    was = _membership_facts(membership)
    if role is not None and role != membership.role:
        _validate_role(role)
        _ensure_other_manager(membership)
        if Membership.objects.filter(
            project=membership.project_id, user=membership.user_id, role=role
        ).exists():
            raise ApplicationError(
                f"{membership.user.username} is already a {role} of this project.", field="role"
            )
        membership.role = role
    if skills is not None:
        membership.skills = _clean_skills(skills)
    if capacity is not None:
        if capacity < 0:
            raise ApplicationError("Capacity cannot be negative.", field="capacity")
        membership.capacity = capacity
    membership.save()
    _sync_permissions(project=membership.project, user=membership.user)
    before, after = changed_fields(was, _membership_facts(membership))
    if after:
        activity_record(
            actor=actor,
            verb="membership.changed",
            target=_membership_label(membership),
            project=membership.project,
            before=before,
            after=after,
        )
    return membership


@transaction.atomic
def membership_remove(*, actor, membership: Membership) -> None:
    require(actor, membership.project, Action.CHANGE)
    membership = (
        Membership.objects.select_for_update()
        .select_related("user", "project")
        .get(pk=membership.pk)
    )
    _ensure_other_manager(membership)
    activity_record(
        actor=actor,
        verb="membership.removed",
        target=_membership_label(membership),
        project=membership.project,
        before=_membership_facts(membership),
    )
    membership.delete()
    _sync_permissions(project=membership.project, user=membership.user)
    logger.info(
        "%s removed %s as %s of %s", actor, membership.user, membership.role, membership.project
    )


@transaction.atomic
def membership_remove_user(*, actor, project: Project, user, role: str | None = None) -> int:
    """Remove all of a user's roles in the project (or only ``role``). Returns how many."""
    require(actor, project, Action.CHANGE)
    memberships = Membership.objects.filter(project=project, user=user)
    if role is not None:
        _validate_role(role)
        memberships = memberships.filter(role=role)
    removed = 0
    for membership in memberships:
        membership_remove(actor=actor, membership=membership)
        removed += 1
    return removed


def _clean_guideline(title: str, body: str) -> tuple[str, str]:
    title, body = (title or "").strip(), (body or "").strip()
    if not title:
        raise ApplicationError("A guideline needs a title.", field="title")
    if not body:
        raise ApplicationError("Write the guideline.", field="body")
    if len(body) > 20_000:
        raise ApplicationError("Keep a guideline under 20,000 characters.", field="body")
    return title[:200], body


@transaction.atomic
def guideline_create(*, actor, project: Project, title: str, body: str) -> Guideline:
    require(actor, project, Action.WRITE_GUIDELINES)
    title, body = _clean_guideline(title, body)
    return Guideline.objects.create(
        project=project, title=title, body=body, author=actor_user(actor)
    )


@transaction.atomic
def guideline_update(
    *, actor, guideline: Guideline, title: str, body: str, version: int | None = None
) -> Guideline:
    """Edit a guideline; ``version`` refuses a stale form (someone saved in between)."""
    locked = Guideline.objects.select_for_update().select_related("project").get(pk=guideline.pk)
    require(actor, locked.project, Action.WRITE_GUIDELINES)
    if version is not None and version != locked.version:
        raise Conflict(
            "Someone else changed this guideline since you opened it. "
            "Review the current text and save again.",
            extra={"version": locked.version},
        )
    title, body = _clean_guideline(title, body)
    if (title, body) != (locked.title, locked.body):
        locked.title, locked.body, locked.author = title, body, actor_user(actor)
        locked.version += 1
        locked.save()
    return locked


@transaction.atomic
def guideline_delete(*, actor, guideline: Guideline) -> None:
    require(actor, guideline.project, Action.WRITE_GUIDELINES)
    guideline.delete()


# --- quality control -----------------------------------------------------------------------


@transaction.atomic
def project_quality_settings_update(
    *, actor, project: Project, audit_percent: float, audit_kind: str
) -> Project:
    """Set audit sampling: the percent of delivered units drawn for audit (0 turns it off)
    and the audit kind. ``standard`` audits (accept, reject, fix) need stage-level delivery.

    Not guarded by ``Project.version``: the settings are not part of the edit form."""
    require(actor, project, Action.CHANGE)
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if isinstance(audit_percent, bool) or not isinstance(audit_percent, int | float):
        raise ApplicationError("The audit share must be a number.", field="audit_percent")
    if not 0 <= audit_percent <= 100:
        raise ApplicationError(
            "The audit share is a percentage from 0 to 100.", field="audit_percent"
        )
    if audit_kind not in AUDIT_KINDS:
        raise ApplicationError(
            f"The audit kind is one of {', '.join(AUDIT_KINDS)}.", field="audit_kind"
        )
    if audit_kind == "standard" and locked.delivery != Delivery.STAGE:
        raise ApplicationError(
            "Standard audits (accept, reject or fix) need per-stage delivery; this project "
            "delivers per task. Choose fixless audits, or change the delivery first.",
            field="audit_kind",
        )
    percent = int(audit_percent) if float(audit_percent).is_integer() else float(audit_percent)
    current = locked.settings if isinstance(locked.settings, dict) else {}
    before, after = changed_fields(current, {"audit_percent": percent, "audit_kind": audit_kind})
    if after:
        locked.settings = {**current, **after}
        locked.save(update_fields=["settings", "updated_at"])
        activity_record(
            actor=actor,
            verb="project.quality_updated",
            target=locked,
            project=locked,
            before=before,
            after=after,
        )
        logger.info("project %s audit settings changed by %s: %s", locked.slug, actor, after)
    return locked


@transaction.atomic
def project_random_sample_review_add(
    *, actor, project: Project, percent: float, review_stage: str | None = None
) -> "Blueprint":
    """Turn full review into random-sample review: a new version of the active blueprint with
    a logic stage whose ``random_sample`` rule sends ``percent`` % of tasks to the review
    stage (``review_stage``, else the first) and the others to done. Without a review stage
    one is added, reviewing the annotate stages. Tasks created from now on use it; tasks
    under way keep their version. Returns the new (active) blueprint version."""
    from blueprints.models import Blueprint
    from blueprints.recipes import add_random_sample_review
    from blueprints.services import blueprint_activate, blueprint_save

    require(actor, project, Action.CHANGE)
    # Two clicks at once must not both build on the same version.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    active = Blueprint.objects.filter(project=project, active=True).first()
    if active is None:
        raise ApplicationError("The project has no active blueprint to add a review to.")
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100:
        raise ApplicationError(
            "The sample is a percentage above 0 and at most 100.", field="percent"
        )
    percent = int(percent) if float(percent).is_integer() else float(percent)
    definition, _ = add_random_sample_review(
        active.definition, percent=percent, review=review_stage or None
    )
    blueprint, _ = blueprint_save(
        actor=actor, project=project, definition=definition, name=active.name, new_version=True
    )
    if not blueprint.active:  # a newer, inactive version of the name existed
        blueprint = blueprint_activate(actor=actor, blueprint=blueprint)
    return blueprint
