"""Demo data (API.md "Demo data"): idempotent, built through the same services as the app.

Later issues add datasets, blueprints and tasks here.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

from projects import services as project_services
from projects.models import Dataset, DatasetFormat, ImportStatus, Project, Role

DEMO_PASSWORD = "demo"  # noqa: S105 — documented demo credential, printed at start-up
DEMO_PROJECT_SLUG = "pick-and-place"


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    project_roles: tuple[str, ...] = ()
    superuser: bool = False
    skills: tuple[str, ...] = ()


DEMO_USERS = (
    DemoUser("admin", "Ada", "Admin", superuser=True),
    DemoUser("manager", "Maya", "Manager", (Role.MANAGER,)),
    DemoUser("reviewer", "Ravi", "Reviewer", (Role.REVIEWER,)),
    DemoUser("annotator", "Ana", "Annotator", (Role.ANNOTATOR,), skills=("robotics", "video")),
    DemoUser("annotator2", "Noah", "Annotator", (Role.ANNOTATOR,), skills=("robotics",)),
)


def seed_demo() -> dict:
    """Create (or leave as they are) the demo users, project and datasets.

    Returns what was created.
    """
    created, project, users = _seed_people()
    created["blueprints"] = seed_demo_blueprint(project=project, actor=users["manager"])
    # Imports publish files, so they run outside the people's transaction, one by one.
    created["datasets"] = seed_demo_datasets(project=project, actor=users["manager"])
    return created


@transaction.atomic
def _seed_people() -> tuple[dict, Project, dict]:
    User = get_user_model()
    created: dict[str, list[str]] = {"users": [], "projects": [], "memberships": []}
    users = {}
    for spec in DEMO_USERS:
        user, new = User.objects.get_or_create(
            username=spec.username,
            defaults={
                "first_name": spec.first_name,
                "last_name": spec.last_name,
                "email": f"{spec.username}@example.com",
                "is_superuser": spec.superuser,
                "is_staff": spec.superuser,
            },
        )
        if new:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            created["users"].append(user.username)
        users[spec.username] = user

    add_project = Permission.objects.get(codename="add_project", content_type__app_label="projects")
    users["manager"].user_permissions.add(add_project)

    project = Project.objects.filter(slug=DEMO_PROJECT_SLUG).first()
    if project is None:
        project = project_services.project_create(
            actor=users["manager"],
            name="Pick and place",
            slug=DEMO_PROJECT_SLUG,
            description="Label grasps, objects and outcomes in tabletop pick-and-place "
            "demonstrations recorded on a bimanual robot.",
        )
        created["projects"].append(project.slug)
    for spec in DEMO_USERS:
        user = users[spec.username]
        for role in spec.project_roles:
            if project.memberships.filter(user=user, role=role).exists():
                continue  # keep whatever a manager changed since
            project_services.membership_add(
                actor=users["manager"],
                project=project,
                user=user,
                role=role,
                skills=list(spec.skills),
            )
            created["memberships"].append(f"{spec.username}:{role}")
    return created, project, users


def seed_demo_blueprint(*, project: Project, actor) -> list[str]:
    """The demo project works with the pick-and-place example, active."""
    from blueprints.models import Blueprint
    from blueprints.services import blueprint_activate, blueprint_create_from_example

    if Blueprint.objects.filter(project=project, name="pick-and-place").exists():
        return []
    blueprint = blueprint_create_from_example(
        actor=actor, project=project, example="pick-and-place"
    )
    blueprint_activate(actor=actor, blueprint=blueprint)
    return [str(blueprint)]


# (name, description, number of episodes, seed)
DEMO_DATASETS = (
    ("Tabletop session 1", "Morning recordings: one block to the bin per episode.", 4, 1),
    ("Tabletop session 2", "Night-shift recordings, same task, other layouts.", 3, 2),
    ("Sorting blocks", "Blocks of four colours, the first one goes to the bin.", 3, 3),
)


def seed_demo_datasets(*, project: Project, actor) -> list[str]:
    """Generate the demo's robot episodes as ALOHA HDF5 files and import them for real."""
    from core.synthetic import make_episode, write_aloha_folder
    from projects.dataset_services import dataset_import_run, dataset_import_start

    made = []
    existing = set(
        Dataset.objects.filter(project=project, status=ImportStatus.FINISHED).values_list(
            "name", flat=True
        )
    )
    for name, description, episodes, seed in DEMO_DATASETS:
        if name in existing:
            continue
        with tempfile.TemporaryDirectory(prefix="stagecraft-demo-") as tmp:
            write_aloha_folder(Path(tmp), episodes=episodes, seed=seed)
            dataset = dataset_import_start(
                actor=actor,
                project=project,
                name=name,
                description=description,
                format=DatasetFormat.HDF5,
                source_path=tmp,
                background=False,
            )
            dataset_import_run(dataset_id=dataset.pk)
        made.append(name)
    if "Tabletop snapshots" not in existing:
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="stagecraft-demo-") as tmp:
            for i in range(6):
                frame = make_episode(100 + i, size=128, frames=40).top[0]
                Image.fromarray(frame).save(Path(tmp) / f"snapshot_{i}.png")
            dataset = dataset_import_start(
                actor=actor,
                project=project,
                name="Tabletop snapshots",
                description="Still images of table layouts, for box labelling.",
                format=DatasetFormat.IMAGES,
                source_path=tmp,
                background=False,
            )
            dataset_import_run(dataset_id=dataset.pk)
        made.append("Tabletop snapshots")
    return made
