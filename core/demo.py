"""Demo data (API.md "Demo data"): idempotent, built through the same services as the app.

Later issues add datasets, blueprints and tasks here.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

from core.demo_experience import seed_demo_experience
from core.demo_progress import seed_demo_progress
from core.demo_quality import seed_demo_quality, worked_minutes
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
    """Create (or leave as they are) the demo users, project, datasets, tasks and, unless
    ``settings.STAGECRAFT_DEMO_QUALITY`` is False, the quality history (core/demo_quality.py)
    and the progress history (core/demo_progress.py; ``STAGECRAFT_DEMO_PROGRESS`` turns it on
    or off alone).

    Returns what was created.
    """
    created, project, users = _seed_people()
    created["blueprints"] = seed_demo_blueprint(project=project, actor=users["manager"])
    # Imports publish files, so they run outside the people's transaction, one by one.
    created["datasets"] = seed_demo_datasets(project=project, actor=users["manager"])
    created["tasks"] = seed_demo_tasks(project=project, users=users)
    created["guidelines"] = seed_demo_guidelines(project=project, actor=users["reviewer"])
    # The test suite turns the history off (config/test_settings.py): its tests count the
    # demo's eight tasks, and browser tests seed the demo for every test.
    if getattr(settings, "STAGECRAFT_DEMO_QUALITY", True):
        created["quality"] = seed_demo_quality(project, users)
    # Weeks of finished work and an open backlog for the project's dashboard (its ETA): with
    # the quality history, or alone when a test asks for it (STAGECRAFT_DEMO_PROGRESS).
    progress = getattr(settings, "STAGECRAFT_DEMO_QUALITY", True)
    if getattr(settings, "STAGECRAFT_DEMO_PROGRESS", progress):
        created["progress"] = seed_demo_progress(project, users)
    created["experience"] = seed_demo_experience(project=project, users=users)  # and notifications
    return created


DEMO_GUIDELINES = [
    (
        "Grasp segments",
        "A grasp starts on the first frame where the gripper begins to open towards the "
        "object and ends on the frame where it has released it.\n\n"
        "Describe each grasp in a few words: what is grasped and where it goes "
        "(“grasp the red block, place it in the bowl”).",
    ),
    (
        "Object boxes",
        "Box every object on the table in the first frame, tight to its visible edges. "
        "Mark an object occluded when less than half of it is visible.",
    ),
]


def seed_demo_guidelines(*, project: Project, actor) -> list[str]:
    from projects.services import guideline_create

    made = []
    for title, body in DEMO_GUIDELINES:
        if not project.guidelines.filter(title=title).exists():
            guideline_create(actor=actor, project=project, title=title, body=body)
            made.append(title)
    return made


def seed_demo_tasks(*, project: Project, users: dict) -> list[str]:
    """Tasks in every status, driven through the real services (no status is written)."""
    from tasks import services as task_services
    from tasks.models import Task

    if Task.objects.filter(project=project).exists():
        return []
    manager, ana, ravi = users["manager"], users["annotator"], users["reviewer"]
    datasets = list(
        Dataset.objects.filter(
            project=project, format=DatasetFormat.HDF5, status=ImportStatus.FINISHED
        ).order_by("name")
    )

    def make(name, dataset, batch="day", **extra):
        return task_services.task_create(
            actor=manager, project=project, name=name, datasets=[dataset.pk] if dataset else [],
            annotators=["annotator", "annotator2"], reviewers=["reviewer"], batch=batch, **extra,
        )  # fmt: skip

    def annotate(task, dataset, with_segment=True):
        task_services.stage_start(actor=ana, task=task, stage_key="objects")
        # The objects stage boxes its drawn share of the samples (sampling: 50).
        objects = task_services.spec_for(task.blueprint).by_key["objects"]
        every = list(dataset.samples.all()) if dataset else []
        for sample in task_services.stage_samples(task=task, stage=objects, samples=every):
            task_services.annotation_create(
                actor=ana, task=task, stage="objects", label="object", sample=sample.pk,
                data={"frame": 0, "camera": "cam_high", "x": 10, "y": 12, "w": 14, "h": 14},
                attributes={"category": "block"},
            )  # fmt: skip
        task_services.stage_submit(actor=ana, task=task, stage_key="objects")
        task_services.stage_start(actor=ana, task=task, stage_key="segments")
        if with_segment:
            task_services.annotation_create(
                actor=ana, task=task, stage="segments", label="gripper_open",
                data={"start": 20, "end": 45}, attributes={"description": "grasp the block"},
            )  # fmt: skip
            task_services.stage_submit(actor=ana, task=task, stage_key="segments")

    first = datasets[0] if datasets else None
    made = [make(f"Morning episodes {i + 1}", first, priority="normal").name for i in range(3)]
    # Night-shift work is always reviewed (the blueprint's route): what the annotator
    # finishes here lands in the reviewer's work.
    task = make("Reach and grasp", first, batch="night-shift", priority="high")
    task_services.stage_start(actor=ana, task=task, stage_key="segments")
    made.append(task.name)
    task = make("Night shift review", first, batch="night-shift", priority="urgent")
    annotate(task, first)
    made.append(task.name)
    task = make("Reviewed night episode", first, batch="night-shift")
    annotate(task, first)
    task_services.stage_review(actor=ravi, task=task, stage_key="full_review", decision="approve")
    made.append(task.name)
    task = make("Sent back for rework", first, batch="night-shift")
    annotate(task, first)
    task_services.stage_review(
        actor=ravi, task=task, stage_key="full_review", decision="reject",
        comment="The grasp starts ten frames earlier.",
    )  # fmt: skip
    made.append(task.name)
    task = make("Delivered to training", first, batch="night-shift")
    annotate(task, first)
    task_services.stage_review(actor=ravi, task=task, stage_key="full_review", decision="approve")
    task_services.task_mark_submitted(actor=manager, tasks=[task], reason="demo export")
    made.append(task.name)
    worked_minutes(Task.objects.filter(project=project).values_list("pk", flat=True))
    return made


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
