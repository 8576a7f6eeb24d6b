import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from guardian.shortcuts import get_perms

from core.exceptions import ApplicationError, Conflict
from projects import selectors, services
from projects.models import Membership, Project, Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_it_makes_the_creator_the_first_manager(manager):
    project = services.project_create(actor=manager, name="  Drawer opening ", delivery="stage")
    assert project.name == "Drawer opening"
    assert project.slug == "drawer-opening"
    assert project.delivery == "stage"
    assert list(project.memberships.values_list("user__username", "role")) == [("maya", "manager")]
    assert set(get_perms(manager, project)) >= {"view_project", "change_project"}


def test_it_gives_each_project_its_own_slug(manager):
    first = services.project_create(actor=manager, name="Sorting")
    second = services.project_create(actor=manager, name="Sorting")
    assert (first.slug, second.slug) == ("sorting", "sorting-2")


def test_it_refuses_a_taken_slug_that_was_asked_for(manager):
    services.project_create(actor=manager, name="Sorting", slug="sorting")
    with pytest.raises(ApplicationError, match="taken") as info:
        services.project_create(actor=manager, name="Other", slug="sorting")
    assert info.value.field == "slug"


def test_it_refuses_users_without_the_creator_permission(annotator):
    with pytest.raises(PermissionDenied):
        services.project_create(actor=annotator, name="Mine")
    assert not Project.objects.exists()


def test_it_refuses_bad_names_and_deliveries(manager):
    with pytest.raises(ApplicationError) as info:
        services.project_create(actor=manager, name="   ")
    assert info.value.field == "name"
    with pytest.raises(ApplicationError) as info:
        services.project_create(actor=manager, name="x", delivery="weekly")
    assert info.value.field == "delivery"


def test_update_bumps_the_version_and_refuses_stale_versions(project, manager):
    updated = services.project_update(
        actor=manager, project=project, version=1, description="New text"
    )
    assert (updated.description, updated.version) == ("New text", 2)
    with pytest.raises(Conflict) as info:
        services.project_update(actor=manager, project=project, version=1, name="Old form")
    assert info.value.extra == {"version": 2}
    project.refresh_from_db()
    assert project.name == "Pick and place"


def test_update_without_changes_keeps_the_version(project, manager):
    services.project_update(actor=manager, project=project, name=project.name)
    project.refresh_from_db()
    assert project.version == 1


def test_grants_follow_memberships_when_added_changed_and_removed(project, manager):
    user = UserFactory(username="bo")
    membership, created = services.membership_add(
        actor=manager, project=project, username="bo", role=Role.ANNOTATOR
    )
    assert created
    assert set(get_perms(user, project)) == {"view_project", "annotate_project"}

    services.membership_update(actor=manager, membership=membership, role=Role.REVIEWER)
    assert set(get_perms(user, project)) == {"view_project", "review_project"}

    services.membership_add(actor=manager, project=project, user=user, role=Role.ANNOTATOR)
    assert set(get_perms(user, project)) == {
        "view_project",
        "annotate_project",
        "review_project",
    }

    services.membership_remove_user(actor=manager, project=project, user=user, role="reviewer")
    assert set(get_perms(user, project)) == {"view_project", "annotate_project"}

    services.membership_remove_user(actor=manager, project=project, user=user)
    assert get_perms(user, project) == []
    assert selectors.project_list_for_user(user=user).count() == 0


def test_adding_a_held_role_updates_skills_and_capacity(project, manager, annotator):
    membership, created = services.membership_add(
        actor=manager,
        project=project,
        user=annotator,
        role=Role.ANNOTATOR,
        skills=[" Robotics", "video", "robotics"],
        capacity=3,
    )
    assert not created
    assert (membership.skills, membership.capacity) == (["robotics", "video"], 3)
    assert Membership.objects.filter(project=project, user=annotator).count() == 1


def test_unknown_users_and_roles_are_refused_by_name(project, manager):
    with pytest.raises(ApplicationError, match="No active user is named “ghost”"):
        services.membership_add(actor=manager, project=project, username="ghost", role="annotator")
    with pytest.raises(ApplicationError, match="Role must be one of"):
        services.membership_add(actor=manager, project=project, username="ana", role="owner")


def test_changing_to_a_role_already_held_is_refused(project, manager, annotator):
    services.membership_add(actor=manager, project=project, user=annotator, role=Role.REVIEWER)
    membership = Membership.objects.get(project=project, user=annotator, role=Role.ANNOTATOR)
    with pytest.raises(ApplicationError, match="already a reviewer"):
        services.membership_update(actor=manager, membership=membership, role=Role.REVIEWER)


def test_the_last_manager_cannot_be_removed_or_demoted(project, manager):
    own = Membership.objects.get(project=project, user=manager)
    with pytest.raises(ApplicationError, match="at least one manager"):
        services.membership_remove(actor=manager, membership=own)
    with pytest.raises(ApplicationError, match="at least one manager"):
        services.membership_update(actor=manager, membership=own, role=Role.REVIEWER)
    assert set(get_perms(manager, project)) >= {"change_project"}

    services.membership_add(actor=manager, project=project, username="ana", role=Role.MANAGER)
    services.membership_remove(actor=manager, membership=own)
    assert get_perms(manager, project) == []


def test_project_list_shows_only_visible_projects_in_bounded_queries(
    manager, annotator, outsider, django_assert_max_num_queries
):
    for n in range(12):
        project = services.project_create(actor=manager, name=f"Project {n}")
        if n % 2:
            services.membership_add(
                actor=manager, project=project, user=annotator, role=Role.ANNOTATOR
            )
    with django_assert_max_num_queries(3):
        mine = list(selectors.project_list_for_user(user=annotator))
        roles = [[m.role for m in p.own_memberships] for p in mine]
    assert len(mine) == 6
    assert roles == [["annotator"]] * 6
    assert all(p.member_count == 2 for p in mine)
    assert list(selectors.project_list_for_user(user=outsider)) == []


# Authorization: every service that changes data checks its actor first (core.access.require):
# 403 for members without the role, 404 for people who may not even see the project.
NOT_MANAGERS = [
    ("annotator", PermissionDenied),
    ("reviewer", PermissionDenied),
    ("outsider", Http404),
]


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_update_the_project(project, users, role, refusal):
    with pytest.raises(refusal):
        services.project_update(actor=users[role], project=project, name="Taken over")
    project.refresh_from_db()
    assert project.name == "Pick and place"


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_add_members(project, users, role, refusal):
    with pytest.raises(refusal):
        services.membership_add(
            actor=users[role], project=project, user=users[role], role=Role.MANAGER
        )
    assert not project.memberships.filter(user=users[role], role=Role.MANAGER).exists()


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_change_members(project, users, annotator, role, refusal):
    membership = project.memberships.get(user=annotator)
    with pytest.raises(refusal):
        services.membership_update(actor=users[role], membership=membership, capacity=99)
    membership.refresh_from_db()
    assert membership.capacity != 99


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_remove_members(project, users, manager, role, refusal):
    membership = project.memberships.get(user=manager)
    with pytest.raises(refusal):
        services.membership_remove(actor=users[role], membership=membership)
    with pytest.raises(refusal):
        services.membership_remove_user(actor=users[role], project=project, user=manager)
    assert project.memberships.filter(user=manager).exists()


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_import_datasets(project, users, tmp_path, role, refusal, settings):
    from projects.dataset_services import dataset_import_start

    settings.STAGECRAFT_IMPORT_ROOTS = [str(tmp_path)]
    with pytest.raises(refusal):
        dataset_import_start(
            actor=users[role],
            project=project,
            name="Mine",
            format="hdf5",
            source_path=tmp_path,
            background=False,
        )
    assert not project.datasets.exists()


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_resync_datasets(dataset, users, role, refusal, redis_conn):
    from projects.dataset_services import dataset_resync_start

    with pytest.raises(refusal):
        dataset_resync_start(actor=users[role], dataset=dataset)


def test_the_command_line_imports_as_the_system(project, tmp_path):
    from core.access import SYSTEM
    from projects.dataset_services import dataset_import_start

    dataset = dataset_import_start(
        actor=SYSTEM,
        project=project,
        name="From the shell",
        format="hdf5",
        source_path=tmp_path,
        background=False,
    )
    assert dataset.created_by is None


@pytest.mark.parametrize(
    ("role", "refusal"), [("annotator", PermissionDenied), ("outsider", Http404)]
)
def test_only_reviewers_and_managers_write_guidelines(project, users, reviewer, role, refusal):
    guideline = services.guideline_create(actor=reviewer, project=project, title="T", body="B")
    with pytest.raises(refusal):
        services.guideline_create(actor=users[role], project=project, title="T", body="B")
    with pytest.raises(refusal):
        services.guideline_update(actor=users[role], guideline=guideline, title="X", body="Y")
    with pytest.raises(refusal):
        services.guideline_delete(actor=users[role], guideline=guideline)
    guideline.refresh_from_db()
    assert (guideline.title, project.guidelines.count()) == ("T", 1)


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_delete_projects(project, users, role, refusal):
    with pytest.raises(refusal):
        services.project_delete(actor=users[role], project=project)
    assert Project.objects.filter(pk=project.pk).exists()


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_delete_datasets(dataset, users, role, refusal):
    from projects.dataset_services import dataset_delete
    from projects.models import Dataset

    with pytest.raises(refusal):
        dataset_delete(actor=users[role], dataset=dataset)
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_deleting_a_project_removes_its_grants(project, manager, annotator):
    from guardian.models import UserObjectPermission

    services.project_delete(actor=manager, project=project)
    assert not UserObjectPermission.objects.filter(object_pk=str(project.pk)).exists()
    assert selectors.project_list_for_user(user=annotator).count() == 0


def test_deleting_a_dataset_removes_its_samples_and_files(
    dataset, manager, django_capture_on_commit_callbacks
):
    from projects.dataset_services import dataset_delete, dataset_dir
    from projects.models import Sample

    folder = dataset_dir(dataset)
    assert folder.exists()
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(actor=manager, dataset=dataset)
    assert not Sample.objects.filter(dataset=dataset.pk).exists()
    assert not folder.exists()
