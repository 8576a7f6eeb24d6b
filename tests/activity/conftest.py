import pytest

from projects import services as project_services
from tests.factories import UserFactory


@pytest.fixture
def trail(project, manager, admin_user, redis_conn):
    """Rows in two projects (maya manages only the first) and one queue action."""
    from django.contrib.auth.models import Permission

    from queues import control

    mo = UserFactory(username="mo")
    mo.user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    other = project_services.project_create(actor=mo, name="Other lab")
    project_services.project_update(actor=mo, project=other, description="Not maya's")
    project_services.project_update(actor=manager, project=project, description="Maya's")
    control.queue_action(actor=admin_user, name="default", action="pause")
    return {"project": project, "other": other, "mo": mo}
