"""Done means: through the API alone a client creates a task with a project and a name,
annotates, submits, reviews, and receives the signed callback; the events show each step."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tasks.models import Delivery, StageRun, Task

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP endpoint that answers 500 to the first ``failures`` posts, then 200."""

    def __init__(self, failures: int):
        self.failures, self.received = failures, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                ok = len(receiver.received) > receiver.failures
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver(failures=2)
    yield r
    r.close()


def test_api_journey_with_a_signed_retried_callback(
    api_as, manager, annotator, reviewer, project, receiver, run_jobs, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.STAGECRAFT_WEBHOOK_RETRY_INTERVALS = [0, 0, 0]  # retry at once in the test
    upstream, ana, ravi = api_as(manager), api_as(annotator), api_as(reviewer)

    response = upstream.post(
        "/api/v1/tasks/",
        {"project": project.pk, "name": "Episode 42", "callback_url": receiver.url},
        format="json",
    )
    assert response.status_code == 201, response.content
    task = response.json()
    assert task["blueprint"] == {"name": "default", "version": 1}
    assert [(s["key"], s["status"]) for s in task["stages"]] == [
        ("annotate", "ready"),
        ("review", "blocked"),
    ]
    url = f"/api/v1/tasks/{task['id']}"
    claimed = ana.post("/api/v1/tasks/next/")  # the annotator asks for work
    assert claimed.status_code == 200 and claimed.json()["id"] == task["id"]
    assert claimed.json()["status"] == "in_progress"
    assert ana.post("/api/v1/tasks/next/").status_code == 204  # nothing else to do
    response = ana.post(
        f"{url}/annotations/",
        {"stage": "annotate", "label": "segment", "data": {"start": 3, "end": 9},
         "attributes": {"description": "reach"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert ana.post(f"{url}/stages/annotate/submit/").json()["status"] == "pending_review"
    with django_capture_on_commit_callbacks(execute=True):
        response = ravi.post(f"{url}/stages/review/review/", {"decision": "approve"}, format="json")
    assert response.json()["status"] == "review_passed"

    run_jobs("webhooks")  # fails twice, succeeds the third time

    assert len(receiver.received) == 3
    headers, body = receiver.received[-1]
    expected = hmac.new(
        settings.STAGECRAFT_WEBHOOK_SECRET.encode(), body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Stagecraft-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["task"] == task["id"] and payload["status"] == "review_passed"
    assert [a["label"] for a in payload["annotations"]] == ["segment"]

    assert upstream.get(f"{url}/").json()["callback"] == "succeeded"
    deliveries = upstream.get(f"{url}/deliveries/").json()
    assert deliveries[0]["callback"] == "succeeded"
    assert [a["status_code"] for a in deliveries[0]["attempts"]] == [500, 500, 200]
    events = [(e["kind"], e["stage"], e["actor"]) for e in upstream.get(f"{url}/events/").json()]
    assert events == [
        ("created", "", "maya"),  # it opened annotate (data.stages)
        ("stage_started", "annotate", "ana"),
        ("status_changed", "", "ana"),
        ("stage_submitted", "annotate", "ana"),
        ("stage_ready", "review", None),
        ("status_changed", "", "ana"),
        ("review_approved", "review", "ravi"),
        ("status_changed", "", "ravi"),
        ("delivered", "", None),
    ]


def test_a_receiver_that_never_answers_fails_the_delivery_not_the_task(
    api_as, manager, project, run_jobs, settings, django_capture_on_commit_callbacks
):
    settings.STAGECRAFT_WEBHOOK_RETRY_INTERVALS = [0, 0]
    receiver = Receiver(failures=99)
    try:
        from tasks import services
        from tasks.models import Task

        task = services.task_create(
            actor=manager, project=project, name="t", callback_url=receiver.url
        )
        task = Task.objects.get(pk=task.pk)
        services.stage_start(actor=manager, task=task, stage_key="annotate")
        services.stage_submit(actor=manager, task=task, stage_key="annotate")
        from projects import services as project_services
        from tests.factories import UserFactory

        other = UserFactory(username="rev2")
        project_services.membership_add(actor=manager, project=project, user=other, role="reviewer")
        with django_capture_on_commit_callbacks(execute=True):
            services.stage_review(actor=other, task=task, stage_key="review", decision="approve")
        run_jobs("webhooks")
    finally:
        receiver.close()
    delivery = Delivery.objects.get(task=task)
    assert delivery.callback == "failed"
    assert delivery.attempts.count() == 3
    task.refresh_from_db()
    assert task.status == "review_passed"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://127.0.0.1:9/x"])
def test_callback_urls_are_checked(api_as, manager, project, settings, url):
    settings.STAGECRAFT_ALLOW_PRIVATE_CALLBACKS = False
    response = api_as(manager).post(
        "/api/v1/tasks/", {"project": project.pk, "name": "t", "callback_url": url}, format="json"
    )
    assert response.status_code == 400
    assert "callback_url" in response.json()


def test_api_errors_name_the_field(api_as, manager, project):
    client = api_as(manager)
    cases = [
        ({"project": project.pk}, "name"),
        ({"project": project.pk, "name": "t", "priority": "asap"}, "priority"),
        ({"project": project.pk, "name": "t", "annotators": ["nobody"]}, "annotators"),
        ({"project": project.pk, "name": "t", "datasets": [99999]}, "datasets"),
        ({"project": project.pk, "name": "t", "blueprint": "nope"}, "blueprint"),
        ({"project": "x", "name": "t"}, "project"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/tasks/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), (body, response.json())
    response = client.post("/api/v1/tasks/", {"project": 999999, "name": "t"}, format="json")
    assert response.status_code == 404


def test_unique_id_repeat_answers_409_with_the_task(api_as, manager, project):
    client = api_as(manager)
    body = {"project": project.pk, "name": "t", "unique_id": "scale-123"}
    first = client.post("/api/v1/tasks/", body, format="json").json()
    again = client.post("/api/v1/tasks/", body, format="json")
    assert again.status_code == 409
    assert again.json()["task"] == first["id"]


def test_a_bulk_request_with_one_unique_id_taken_creates_nothing_and_names_it(
    api_as, manager, project
):
    """The unique index finds the taken id as the tasks are written (no read of every id
    first): 409 with the task holding it, nothing of the request kept, the same request
    without that item creates the rest; a deleted task's unique_id is free again."""
    client = api_as(manager)
    taken = client.post(
        "/api/v1/tasks/", {"project": project.pk, "name": "t", "unique_id": "ep-7"}, format="json"
    ).json()
    items = [{"project": project.pk, "name": f"t{i}", "unique_id": f"ep-{i}"} for i in range(20)]
    response = client.post("/api/v1/tasks/bulk/", items, format="json")
    assert response.status_code == 409
    assert response.json()["task"] == taken["id"] and "ep-7" in str(response.json())
    assert Task.objects.filter(project=project).count() == 1
    assert not StageRun.objects.filter(task__project=project).exclude(task=taken["id"]).exists()
    rest = [item for item in items if item["unique_id"] != "ep-7"]
    assert client.post("/api/v1/tasks/bulk/", rest, format="json").status_code == 201
    assert client.delete(f"/api/v1/tasks/{taken['id']}/").status_code == 204
    again = client.post("/api/v1/tasks/bulk/", [items[7]], format="json")
    assert again.status_code == 201 and again.json()["ids"][0] != taken["id"]


def test_bulk_endpoint(api_as, manager, project):
    client = api_as(manager)
    items = [{"project": project.pk, "name": f"t{i}", "batch": "b1"} for i in range(300)]
    response = client.post("/api/v1/tasks/bulk/", items, format="json")
    assert response.status_code == 201 and response.json()["created"] == 300
    bad = client.post("/api/v1/tasks/bulk/", [*items[:2], {"project": project.pk}], format="json")
    assert bad.status_code == 400 and "[2]" in bad.json()
    listing = client.get(f"/api/v1/tasks/?project={project.pk}&batch=b1&page_size=5").json()
    assert listing["count"] == 300 and len(listing["results"]) == 5


def test_stale_annotation_edit_answers_409_with_the_current_version(api_as, annotator, task):
    client = api_as(annotator)
    a = task.first_annotation
    url = f"/api/v1/tasks/{task.pk}/annotations/{a.pk}/"
    ok = client.patch(url, {"version": 1, "data": {"value": "failure"}}, format="json")
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.patch(url, {"version": 1, "data": {"value": "success"}}, format="json")
    assert stale.status_code == 409
    assert stale.json()["version"] == 2
    assert stale.json()["current"]["data"] == {"value": "failure"}


def test_checks_failing_answer_400_with_their_messages(api_as, manager, annotator, project):
    from blueprints import services as blueprint_services

    blueprint = blueprint_services.blueprint_create_from_example(
        actor=manager, project=project, example="pick-and-place"
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    client = api_as(annotator)
    task = (
        api_as(manager)
        .post("/api/v1/tasks/", {"project": project.pk, "name": "t"}, format="json")
        .json()
    )
    claimed = client.post("/api/v1/tasks/next/").json()  # the annotator takes the work
    assert claimed["id"] == task["id"]
    response = client.post(f"/api/v1/tasks/{task['id']}/stages/segments/submit/")
    assert response.status_code == 400
    assert response.json() == {
        "checks": ["At least 1 gripper_open needed; there are 0."],
        "by_sample": {},  # a count over the whole task names no sample
    }


def test_annotators_see_only_their_tasks(api_as, manager, annotator, project, task):
    from tasks import services

    services.task_create(actor=manager, project=project, name="someone else's")
    names = [t["name"] for t in api_as(annotator).get("/api/v1/tasks/").json()["results"]]
    assert names == ["Fixture task"]
    assert len(api_as(manager).get("/api/v1/tasks/").json()["results"]) == 2


def test_task_list_queries_are_bounded(api_as, manager, project, django_assert_max_num_queries):
    from tasks import services

    services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(60)]
    )
    client = api_as(manager)
    with django_assert_max_num_queries(14):
        response = client.get(f"/api/v1/tasks/?project={project.pk}&page_size=50")
    assert len(response.json()["results"]) == 50


def test_invalid_flag_needs_a_reason(api_as, annotator, reviewer, task):
    url = f"/api/v1/tasks/{task.pk}/annotations/{task.first_annotation.pk}/"
    response = api_as(reviewer).patch(url, {"version": 1, "invalid": True}, format="json")
    assert response.status_code == 400 and "invalid_reason" in response.json()
    response = api_as(reviewer).patch(
        url, {"version": 1, "invalid": True, "invalid_reason": "blurry frame"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["invalid"], response.json()["invalid_reason"]) == (True, "blurry frame")


# --- regressions from review ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"frame": 0, "x": 10**400, "y": 0, "w": 1, "h": 1}, "data.x"),
        ({"frame": 0, "x": 0, "y": 0, "w": 1e200, "h": 1}, "data.w"),
        ({"frame": 0, "camera": {"a": 1}, "x": 0, "y": 0, "w": 1, "h": 1}, "data.camera"),
    ],
)
def test_absurd_geometry_is_refused(api_as, annotator, task, data, field):
    response = api_as(annotator).post(
        f"/api/v1/tasks/{task.pk}/annotations/",
        {"stage": "annotate", "label": "object", "data": data},
        format="json",
    )
    assert response.status_code == 400 and field in response.json()


def test_nul_characters_and_deep_nesting_are_400s(api_as, manager, project):
    client = api_as(manager)
    response = client.post(
        "/api/v1/tasks/", {"project": project.pk, "name": "a\x00b"}, format="json"
    )
    assert response.status_code == 400
    assert client.get("/api/v1/tasks/?search=a%00b").status_code == 400
    assert client.get("/api/v1/tasks/?project=%C2%B2").status_code == 400
    deep = "[" * 100_000
    response = client.generic("POST", "/api/v1/tasks/", deep, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("url", ["/api/v1/tasks/", "/api/v1/tasks/bulk/"])
def test_a_lone_surrogate_anywhere_in_the_json_is_a_400_not_a_500(api_as, manager, project, url):
    """JSON may escape half a UTF-16 pair ("\\ud800"): Python decodes it, PostgreSQL cannot
    store it (it answered 500 from the metadata's jsonb column)."""
    client = api_as(manager)
    item = {"project": project.pk, "name": "t", "metadata": {"note": "a\ud800b"}}
    body = json.dumps([item] if url.endswith("bulk/") else item)
    response = client.generic("POST", url, body, content_type="application/json")
    assert response.status_code == 400
    assert "unpaired surrogates" in response.json()["detail"]
    paired = json.dumps({**item, "metadata": {"note": "\U0001f600 ok"}})  # a real pair is fine
    assert (
        client.generic(
            "POST", "/api/v1/tasks/", paired, content_type="application/json"
        ).status_code
        == 201
    )


def test_bulk_is_all_or_nothing_and_names_the_request_index(api_as, manager, project):
    from projects.services import project_create

    other = project_create(actor=manager, name="Second")
    client = api_as(manager)
    items = [
        {"project": project.pk, "name": "a"},
        {"project": other.pk, "name": "b"},
        {"project": project.pk, "name": "c", "annotators": ["nobody"]},
    ]
    response = client.post("/api/v1/tasks/bulk/", items, format="json")
    assert response.status_code == 400
    assert "[2].annotators" in response.json()
    from tasks.models import Task

    assert Task.objects.count() == 0


def test_redirects_are_not_followed(
    manager, project, run_jobs, settings, django_capture_on_commit_callbacks
):
    """A receiver answering 302 to an internal address gets no second request."""
    from tasks import services

    internal = Receiver(failures=0)
    redirects = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            redirects.append(1)
            self.send_response(302)
            self.send_header("Location", internal.url)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.STAGECRAFT_WEBHOOK_RETRY_INTERVALS = []
    try:
        task = services.task_create(
            actor=manager, project=project, name="t",
            callback_url=f"http://127.0.0.1:{server.server_port}/hook",
        )  # fmt: skip
        services.stage_start(actor=manager, task=task, stage_key="annotate")
        services.stage_submit(actor=manager, task=task, stage_key="annotate")
        from projects import services as project_services
        from tests.factories import UserFactory

        other = UserFactory(username="rev3")
        project_services.membership_add(actor=manager, project=project, user=other, role="reviewer")
        with django_capture_on_commit_callbacks(execute=True):
            services.stage_review(actor=other, task=task, stage_key="review", decision="approve")
        run_jobs("webhooks")
    finally:
        server.shutdown()
        internal.close()
    assert redirects == [1] and internal.received == []
    assert Delivery.objects.get(task=task).callback == "failed"


def test_callback_url_is_for_managers_only(api_as, annotator, manager, project):
    client = api_as(manager)
    created = client.post(
        "/api/v1/tasks/",
        {"project": project.pk, "name": "t", "annotators": ["ana"],
         "callback_url": "https://example.com/hook?token=secret"},
        format="json",
    )  # fmt: skip
    assert created.json()["callback_url"].endswith("token=secret")
    seen = api_as(annotator).get(f"/api/v1/tasks/{created.json()['id']}/").json()
    assert "callback_url" not in seen
