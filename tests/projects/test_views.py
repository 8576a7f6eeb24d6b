import pytest
from django.urls import reverse

from projects.models import Membership, Project
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_it_creates_a_project_and_makes_the_creator_its_manager(client, manager):
    client.force_login(manager)
    response = client.post(
        reverse("projects:create"),
        {"name": "Drawer opening", "description": "Open drawers", "delivery": "stage"},
    )
    project = Project.objects.get(name="Drawer opening")
    assert response.status_code == 302
    assert response["Location"] == reverse("projects:members", args=[project.slug])
    assert project.delivery == "stage"
    assert project.memberships.get().role == "manager"


def test_create_form_shows_errors_next_to_fields(client, manager):
    client.force_login(manager)
    response = client.post(reverse("projects:create"), {"name": "", "delivery": "weekly"})
    assert response.status_code == 200
    assert not Project.objects.exists()
    body = response.content.decode()
    assert "This field is required." in body
    assert "Select a valid choice." in body


def test_edit_refuses_a_stale_form_and_keeps_the_input(client, manager, project):
    client.force_login(manager)
    url = reverse("projects:edit", args=[project.slug])
    fresh = {"name": "Renamed", "description": "", "delivery": "task", "version": 1}
    assert client.post(url, fresh).status_code == 302

    stale = {"name": "Stale rename", "description": "mine", "delivery": "task", "version": 1}
    response = client.post(url, stale)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Someone else changed this project" in body
    assert 'value="Stale rename"' in body  # the user's input is not lost
    assert "Current saved values" in body
    project.refresh_from_db()
    assert project.name == "Renamed"

    # Submitting again after seeing the current values saves.
    stale["version"] = 2
    assert client.post(url, stale).status_code == 302
    project.refresh_from_db()
    assert project.name == "Stale rename"


def test_members_page_adds_a_member_with_htmx(client, manager, project):
    UserFactory(username="newbie")
    client.force_login(manager)
    url = reverse("projects:members", args=[project.slug])
    response = client.post(
        url,
        {"username": "newbie", "role": "reviewer", "skills": "video, qa", "capacity": 4},
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="members"')  # only the fragment
    assert "newbie added as reviewer." in body  # the message swaps in out of band
    membership = Membership.objects.get(project=project, user__username="newbie")
    assert (membership.role, membership.skills, membership.capacity) == (
        "reviewer",
        ["video", "qa"],
        4,
    )


def test_members_page_names_an_unknown_user(client, manager, project):
    client.force_login(manager)
    url = reverse("projects:members", args=[project.slug])
    response = client.post(url, {"username": "ghost", "role": "annotator", "capacity": 1}, **HTMX)
    assert "No active user is named “ghost”." in response.content.decode()
    assert project.memberships.count() == 3


def test_members_page_without_htmx_redirects_after_adding(client, manager, project):
    UserFactory(username="newbie")
    client.force_login(manager)
    url = reverse("projects:members", args=[project.slug])
    response = client.post(url, {"username": "newbie", "role": "annotator", "capacity": 2})
    assert response.status_code == 302
    assert response["Location"] == url


def test_change_role_and_remove(client, manager, annotator, project):
    client.force_login(manager)
    membership = Membership.objects.get(project=project, user=annotator)
    update = reverse("projects:member-update", args=[project.slug, membership.pk])
    response = client.post(update, {"role": "reviewer", "skills": "", "capacity": 7}, **HTMX)
    assert response.status_code == 200
    membership.refresh_from_db()
    assert (membership.role, membership.capacity) == ("reviewer", 7)

    remove = reverse("projects:member-remove", args=[project.slug, membership.pk])
    response = client.post(remove, **HTMX)
    assert "ana is no longer a reviewer here." in response.content.decode()
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_removing_the_last_manager_says_why_and_keeps_it(client, manager, project):
    client.force_login(manager)
    own = Membership.objects.get(project=project, user=manager)
    response = client.post(reverse("projects:member-remove", args=[project.slug, own.pk]), **HTMX)
    assert "A project needs at least one manager" in response.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()


def test_members_of_another_project_are_not_reachable(client, manager, project):
    other = Project.objects.create(name="Other", slug="other")
    foreign = Membership.objects.create(project=other, user=manager, role="manager")
    client.force_login(manager)
    url = reverse("projects:member-remove", args=[project.slug, foreign.pk])
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


def test_read_only_members_see_no_forms(client, annotator, project):
    client.force_login(annotator)
    body = client.get(reverse("projects:members", args=[project.slug])).content.decode()
    assert "Add member" not in body
    assert "Remove" not in body
    assert "ravi" in body


def test_project_list_queries_are_bounded(client, manager, django_assert_max_num_queries):
    from projects import services

    for n in range(15):
        services.project_create(actor=manager, name=f"Project {n}")
    client.force_login(manager)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("projects:list"))
    assert response.content.decode().count('href="/projects/project-') == 15


def test_navigation_fits_the_role(client, users, project):
    def nav(role):
        client.force_login(users[role])
        return client.get("/").content.decode()

    assert "Queues" in nav("admin") and "Admin site" in nav("admin")
    manager_nav = nav("manager")
    assert "New project" in manager_nav and "Queues" not in manager_nav
    for role in ("reviewer", "annotator", "outsider"):
        page = nav(role)
        assert "New project" not in page and "Queues" not in page


def test_error_pages_are_friendly(client, outsider, project):
    client.force_login(outsider)
    response = client.get(reverse("projects:detail", args=[project.slug]))
    assert response.status_code == 404
    assert "not shared with you" in response.content.decode()
    response = client.get(reverse("projects:create"))
    assert response.status_code == 403
    assert "Only administrators and project creators" in response.content.decode()
