"""The ``/tasks/`` page (issue 15): its pager follows numbered pages first and keyset cursors
beyond (the API's cursors), costs the same queries at any depth, says so when a cursor link
was altered, and every row shows the task as it is now (no copy kept between requests)."""

import html
import re

import pytest
from django.urls import reverse

from tasks import services
from tasks import views as task_views
from tasks.batch import task_batch_apply
from tasks.models import Task

pytestmark = pytest.mark.django_db

LIST = "/tasks/"


def pager(body: str) -> str:
    found = re.search(r'<nav aria-label="Pages" class="pager">(.*?)</nav>', body, re.S)
    return found.group(1) if found else ""


def link(body: str, word: str) -> str | None:
    found = re.search(r'<a href="\?([^"]*)"[^>]*>' + word + "</a>", pager(body))
    return html.unescape(found.group(1)) if found else None


def said(body: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", pager(body))).strip()


def shown(body: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<td><a href="/tasks/(\d+)/">', body)]


@pytest.fixture
def many(manager, project):
    # Two inserts: tasks sharing a creation time, ties broken by the id.
    for start, n in ((0, 130), (130, 95)):
        services.task_create_many(
            actor=manager,
            project=project,
            items=[{"name": f"task {i % 7}", "priority": ["low", "urgent"][i % 2]}
                   for i in range(start, start + n)],
        )  # fmt: skip
    return 225


@pytest.mark.parametrize("sort", ["", "name", "-priority", "due_at"])
def test_next_links_turn_into_cursors_after_the_numbered_pages_and_walk_every_task(
    client, manager, project, many, monkeypatch, sort
):
    monkeypatch.setattr(task_views, "PAGE_SIZE", 20)
    monkeypatch.setattr(task_views, "NUMBERED_PAGES", 3)
    client.force_login(manager)
    base = f"project={project.pk}" + (f"&sort={sort}" if sort else "")
    by_number = [
        shown(client.get(f"{LIST}?{base}&page={n}").content.decode()) for n in range(1, 13)
    ]
    assert sum(len(page) for page in by_number) == many

    url, walked, links = f"{LIST}?{base}", [], []
    while url:
        body = client.get(url).content.decode()
        walked.append(shown(body))
        assert said(body).startswith(
            f"{'Previous ' if len(walked) > 1 else ''}Page {len(walked)} of 12 · 225 tasks"
        )
        following = link(body, "Next")
        links.append(following)
        url = f"{LIST}?{following}" if following else None
    assert walked == by_number  # the same tasks, page by page, each once
    assert [lk.split("&")[-1].split("=")[0] for lk in links[:-1]] == ["page"] * 2 + ["cursor"] * 9
    assert links[-1] is None
    assert all(lk.startswith(base + "&") for lk in links[:-1])  # the filter and sort kept

    # Back from the last page: cursors down to the numbered pages, then numbers.
    back = []
    while True:
        previous = link(body, "Previous")
        if previous is None:
            break
        back.append(previous.split("&")[-1].split("=")[0])
        body = client.get(f"{LIST}?{previous}").content.decode()
        assert shown(body) == by_number[11 - len(back)]
    assert back == ["cursor"] * 8 + ["page"] * 3


def test_a_deep_page_by_number_links_on_by_cursor_and_costs_the_queries_of_page_one(
    client, manager, project, many, monkeypatch, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(task_views, "PAGE_SIZE", 20)
    monkeypatch.setattr(task_views, "NUMBERED_PAGES", 3)
    client.force_login(manager)
    client.get(LIST)  # warm the content types
    counted = []
    for query in ("", "&page=2", "&page=8"):
        with CaptureQueriesContext(connection) as captured:
            body = client.get(f"{LIST}?project={project.pk}{query}").content.decode()
        counted.append(len(captured.captured_queries))
    assert link(body, "Next").split("&")[-1].startswith("cursor=")
    assert link(body, "Previous").split("&")[-1].startswith("cursor=")
    following = link(body, "Next")
    with django_assert_max_num_queries(counted[0]):  # a cursor page: no more than page 1
        deep = client.get(f"{LIST}?{following}").content.decode()
    assert "Page 9 of 12" in said(deep)
    assert len(set(counted)) == 1
    assert counted[0] <= 9


def test_a_cursor_page_answers_htmx_with_the_fragment(client, manager, project, many, monkeypatch):
    monkeypatch.setattr(task_views, "PAGE_SIZE", 20)
    monkeypatch.setattr(task_views, "NUMBERED_PAGES", 1)
    client.force_login(manager)
    following = link(client.get(f"{LIST}?project={project.pk}").content.decode(), "Next")
    assert following.split("&")[-1].startswith("cursor=")
    body = client.get(f"{LIST}?{following}", HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<section id="task-results"')
    assert f'hx-get="{LIST}?{link(body, "Next")}"' in pager(body)
    assert "Page 2 of 12" in said(body)


@pytest.mark.parametrize("cursor", ["garbage", "eyJvIjoibmFtZSJ9:bad:sig"])
def test_an_altered_cursor_shows_the_first_page_and_says_so(client, manager, project, many, cursor):
    client.force_login(manager)
    first = shown(client.get(LIST).content.decode())
    response = client.get(LIST, {"cursor": cursor})
    body = response.content.decode()
    assert response.status_code == 200
    assert "The page link was altered or made for another sort order" in body
    assert shown(body) == first


def test_a_cursor_of_another_sort_shows_the_first_page_of_this_one(
    client, manager, project, many, monkeypatch
):
    monkeypatch.setattr(task_views, "NUMBERED_PAGES", 1)
    client.force_login(manager)
    following = link(client.get(LIST).content.decode(), "Next")  # newest first
    cursor = following.split("cursor=")[1]
    body = client.get(f"{LIST}?sort=name&cursor={cursor}").content.decode()
    assert "made for another sort order" in body
    assert shown(body) == shown(client.get(f"{LIST}?sort=name").content.decode())


def test_an_api_cursor_without_a_number_still_pages_the_html(
    client, manager, project, many, api_as
):
    # The API's pages say their numbers in their cursors too; one made by hand does not.
    from tasks.pagination import ListOrder, cursor_make

    newest = Task.objects.filter(project=project).order_by("-created_at", "-pk")
    edge = newest[49]
    order = ListOrder("created_at", descending=True, nullable=False)
    client.force_login(manager)
    body = client.get(LIST, {"cursor": cursor_make(order, edge.pk, edge.created_at)}).content
    body = body.decode()
    assert shown(body) == [t.pk for t in newest[50:100]]
    assert said(body) == "Previous 225 tasks Next"


def test_rows_show_the_task_as_it_is_now_after_every_change(client, manager, project, annotator):
    task = services.task_create(actor=manager, project=project, name="before", priority="low")
    client.force_login(manager)

    def row() -> str:
        body = client.get(LIST).content.decode()
        return re.search(rf'<tr><td><input[^>]*value="{task.pk}".*?</tr>', body, re.S).group(0)

    first = row()
    assert f'<a href="{reverse("tasks:detail", args=[task.pk])}">before</a>' in first
    assert "status-pending_start" in first and "priority-low" in first and "anyone" in first
    services.stage_start(actor=annotator, task=Task.objects.get(pk=task.pk), stage_key="annotate")
    assert "status-in_progress" in row()
    task_batch_apply(actor=manager, action="update", ids=[task.pk], changes={"priority": "urgent"})
    assert "priority-urgent" in row()
    services.task_update(actor=manager, task=Task.objects.get(pk=task.pk), name="after <b>")
    assert "after &lt;b&gt;</a>" in row()
    task_batch_apply(actor=manager, action="assign", ids=[task.pk], annotators=[annotator.username])
    assert f"<td>{annotator.username}</td>" in row()
    project.name = "Renamed"
    project.save(update_fields=["name"])
    assert "<td>Renamed</td></tr>" in row()


def test_the_batch_bar_names_people_by_their_full_names(client, manager, project, annotator):
    annotator.first_name, annotator.last_name = "Ana", "Ortiz <x>"
    annotator.save()
    client.force_login(manager)
    body = client.get(LIST).content.decode()
    assert (
        f'value="{annotator.username}"> Ana Ortiz &lt;x&gt; '
        f'<span class="picker-username">{annotator.username}</span>'
    ) in body
    annotator.is_active = False
    annotator.save()
    assert f'value="{annotator.username}"' not in client.get(LIST).content.decode()
