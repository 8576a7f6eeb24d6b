"""tasks.selectors.task_list_access reads in one query what guardian and the memberships
say: the projects a user may view (own grants and their groups'), their memberships, and
the projects they manage."""

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from projects import services as project_services
from projects.models import Project, Role
from tasks.selectors import task_list_access, user_memberships
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def guardian_says(user) -> list[int]:
    found = get_objects_for_user(
        user, "projects.view_project", klass=Project, accept_global_perms=False
    )
    return list(found.order_by("name", "pk").values_list("pk", flat=True))


def test_it_answers_what_guardian_and_the_memberships_say(manager, annotator, admin_user):
    owner = UserFactory(username="owner")
    owner.user_permissions.add(*manager.user_permissions.all())
    make = lambda name: project_services.project_create(actor=owner, name=name)  # noqa: E731
    managed, annotated, reviewed, taken, by_group, other, changing, same = (
        make("Bravo"), make("alpha"), make("Charlie"), make("Delta"), make("Echo"),
        make("Foxtrot"), make("Golf"), make("Bravo"),
    )  # fmt: skip
    for project, role in ((managed, Role.MANAGER), (annotated, Role.ANNOTATOR),
                          (reviewed, Role.REVIEWER), (taken, Role.MANAGER),
                          (same, Role.ANNOTATOR), (same, Role.REVIEWER)):  # fmt: skip
        project_services.membership_add(actor=owner, project=project, user=annotator, role=role)
    remove_perm("projects.view_project", annotator, taken)  # managed, no longer viewable
    team = Group.objects.create(name="auditors")
    team.user_set.add(annotator)
    assign_perm("projects.view_project", team, by_group)  # viewable through a group
    assign_perm("projects.view_project", manager, other)  # someone else's grant
    assign_perm("projects.change_project", annotator, changing)  # not a view grant

    ContentType.objects.get_for_model(Project)  # Django's content-type cache, as on a page
    for user in (annotator, manager, owner, admin_user):
        access = task_list_access(user=user)
        expected = guardian_says(user) if user != admin_user else [
            p.pk for p in Project.objects.order_by("name", "pk")
        ]  # fmt: skip
        assert [p.pk for p in access.projects] == expected
        assert sorted(access.memberships) == sorted(user_memberships(user))
        assert [(p.pk, p.name, p.slug) for p in access.projects] == list(
            Project.objects.filter(pk__in=expected)
            .order_by("name", "pk")
            .values_list("pk", "name", "slug")
        )

    access = task_list_access(user=annotator)
    seen = {p.pk for p in access.projects}
    assert seen == {managed.pk, annotated.pk, reviewed.pk, by_group.pk, same.pk}
    assert [p.pk for p in access.managed] == [managed.pk, taken.pk]  # by name
    assert sorted(pk for pk, _ in access.memberships) == sorted(
        [managed.pk, annotated.pk, reviewed.pk, taken.pk, same.pk, same.pk]
    )


def test_it_is_one_query(annotator, project, django_assert_num_queries):
    ContentType.objects.get_for_model(Project)
    with django_assert_num_queries(1):
        access = task_list_access(user=annotator)
    assert [p.pk for p in access.projects] == [project.pk]
    assert access.memberships == [(project.pk, Role.ANNOTATOR)]
    assert access.managed == []
