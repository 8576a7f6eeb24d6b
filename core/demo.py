"""Demo data (API.md "Demo data"): idempotent, built through the same services as the app.

Later issues add datasets, blueprints and tasks here.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

from projects import services as project_services
from projects.models import Project, Role

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


@transaction.atomic
def seed_demo() -> dict:
    """Create (or leave as they are) the demo users and project. Returns what was created."""
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
    return created
