"""Fuzz the JSON API from its own OpenAPI schema: no request, however odd, answers 5xx.

Schemathesis generates requests for every operation in ``/api/schema/`` (data that fits
the schema, then data that does not) and sends them to a live server holding the seeded
demo, as the demo's manager, annotator and reviewer (and the admin for the queues).
Path parameters are drawn from real objects (a task with one of its stages, annotations,
comments, samples and cameras, an export...) so requests reach deep into the endpoints
instead of stopping at 404. Operations that delete run last, so they do not empty the
fixtures before the others run.

``FUZZ_EXAMPLES`` (default 4) sets the examples per operation, role and mode;
``FUZZ_RANDOM=1`` draws new data each run instead of the reproducible default;
``FUZZ_ONLY`` (a regular expression) keeps the operations whose "METHOD /path" matches.
"""

import os
import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
ONLY = re.compile(os.environ.get("FUZZ_ONLY", ""))  # e.g. FUZZ_ONLY="POST .*annotations"
ROLES = ("annotator", "reviewer", "manager")  # the manager last: they may change the most
# Deleting operations, in the order they run after everything else: the wider the
# deletion, the later (a project's deletion takes every fixture with it).
LAST = (
    "DELETE /api/v1/tasks/{task_id}/annotations/{annotation_id}/",
    "DELETE /api/v1/tasks/{task_id}/samples/{sample_id}/invalid/",
    "DELETE /api/v1/projects/{project_id}/members/{user_id}/",
    "POST /api/v1/tasks/batch/",
    "DELETE /api/v1/tasks/{task_id}/",
    "DELETE /api/v1/datasets/{dataset_id}/",
    "DELETE /api/v1/projects/{project_id}/",
)


def _order(operation) -> tuple[int, str]:
    label = f"{operation.method.upper()} {operation.path}"
    if label in LAST:
        return 1 + LAST.index(label), label
    return (len(LAST) + 1 if operation.method.upper() == "DELETE" else 0), label


@pytest.fixture
def demo(live_server, demo_seeder):
    """The seeded demo, an export, tokens for its people, and real path parameters."""
    from django.contrib.auth import get_user_model

    from blueprints.validation import validate
    from projects.models import Project
    from queues import services as export_services
    from tasks.models import Task

    demo_seeder.seed()  # as manage.py seed_demo (tests/conftest.py)
    users = {u.username: u for u in get_user_model().objects.all()}
    project = Project.objects.get(slug="pick-and-place")
    export, _ = export_services.export_start(
        actor=users["manager"], project=project, format="jsonl", background=False
    )
    export = export_services.export_run(export_id=export.pk)
    assert export.status == "finished", export.error
    targets = []
    tasks = Task.objects.filter(project=project).select_related("blueprint").order_by("pk")
    for task in tasks:
        samples = [s for d in task.datasets.all() for s in d.samples.all()]
        annotations = list(task.annotations.values_list("pk", flat=True)) or [0]
        comments = list(task.comments.values_list("pk", flat=True)) or [0]
        spec = validate(task.blueprint.definition)
        for run in task.runs.all():
            sample = samples[len(targets) % len(samples)] if samples else None
            classes = list(getattr(spec.by_key[run.stage_key], "classes", None) or ["object"])
            label = classes[len(targets) % len(classes)]
            cameras = [c["name"] for c in sample.cameras] if sample else ["cam_high"]
            targets.append(
                {
                    "project_id": project.pk,
                    "task_id": task.pk,
                    "key": run.stage_key,
                    "annotation_id": annotations[len(targets) % len(annotations)],
                    "comment_id": comments[len(targets) % len(comments)],
                    "sample_id": sample.pk if sample else 0,
                    "dataset_id": sample.dataset_id if sample else 0,
                    "camera": cameras[len(targets) % len(cameras)],
                    "index": (sample.num_frames - 1) if sample and len(targets) % 2 else 0,
                    "blueprint_id": task.blueprint_id,
                    "name": task.blueprint.name,
                    "export_id": export.pk,
                    "user_id": users["annotator2"].pk,  # never one of the fuzzing people
                    "label": label,
                    "kind": spec.classes[label].kind if label in spec.classes else "box",
                }
            )
    assert targets
    tokens = {}
    for username in (*ROLES, "admin"):
        response = requests.post(
            f"{live_server.url}/api/v1/auth/token/",
            json={"username": username, "password": "demo"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        tokens[username] = response.json()["token"]
    return {"targets": targets, "tokens": tokens}


# Annotation data near the shapes the API takes, with odd values mixed in.
_ODD_NUMBERS = st.one_of(
    st.integers(-3, 300), st.floats(allow_nan=False, allow_infinity=False), st.just(10**30)
)
_ODD_DATA = st.one_of(
    st.fixed_dictionaries(
        {"frame": _ODD_NUMBERS, "x": _ODD_NUMBERS, "y": _ODD_NUMBERS, "w": _ODD_NUMBERS,
         "h": _ODD_NUMBERS},
        optional={"camera": st.one_of(st.sampled_from(["cam_high", "nope", ""]), st.integers())},
    ),
    st.fixed_dictionaries(
        {"frame": _ODD_NUMBERS, "points": st.lists(st.lists(_ODD_NUMBERS, max_size=3), max_size=4)}
    ),
    st.fixed_dictionaries({"start": _ODD_NUMBERS, "end": _ODD_NUMBERS}),
    st.fixed_dictionaries({"value": st.one_of(st.sampled_from(["success", "tool"]), st.none())}),
)  # fmt: skip


def _real_fields(target: dict) -> dict:
    """Body fields that name real objects, so a body gets past "no such thing"."""
    return {
        "project": target["project_id"],
        "task": target["task_id"],
        "stage": target["key"],
        "label": target["label"],
        "kind": target["kind"],
        "sample": target["sample_id"],
        "annotation": target["annotation_id"],
        "parent": target["comment_id"],
        "datasets": [target["dataset_id"]],
        "ids": [target["task_id"]],
        "annotators": ["annotator"],
        "reviewers": ["reviewer"],
        "username": "annotator2",
        "version": 1,
    }


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _body_fields(operation) -> set[str]:
    fields = set()
    for body in operation.body:
        schema = body.definition.get("schema") if isinstance(body.definition, dict) else None
        fields |= set((schema or {}).get("properties") or {})
    return fields


def _cases(operation, mode, targets):
    """The operation's cases. Their path parameters are mostly those of one real target;
    half the time their body also keeps to the declared fields, names real objects and
    carries annotation data near the shapes the API takes, to get past the first checks."""
    names = {parameter.name for parameter in operation.path_parameters}
    fields = _body_fields(operation)
    # Targets whose every needed object exists (not every task has comments, say).
    fitting = [t for t in targets if all(t[n] for n in names if n in t)] or targets

    def place(case, target, real_body, data):
        if target is not None:
            case.path_parameters.update({k: v for k, v in target.items() if k in names})
        if real_body and isinstance(case.body, dict):
            real = _real_fields(target or fitting[0])
            body = {k: v for k, v in _without_nul(case.body).items() if k in fields}
            body.update({k: real[k] for k in fields & real.keys()})
            if "data" in fields:
                body["data"] = data
            case.body = body
        return case

    chosen = st.sampled_from(fitting) if names else st.just(None)
    if names:  # now and then keep what schemathesis made up (odd ids, odd strings)
        chosen = st.one_of(chosen, chosen, chosen, st.just(None))
    return st.builds(
        place, operation.as_strategy(generation_mode=mode), chosen, st.booleans(), _ODD_DATA
    )


def _fuzz(operation, mode, base_url, session, targets) -> list[str]:
    """Up to EXAMPLES requests; the 5xx answers, each as a curl line to replay it."""
    errors: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("FUZZ_RANDOM"),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_cases(operation, mode, targets))
    def run(case):
        response = case.call(base_url=base_url, session=session, timeout=30)
        if response.status_code >= 500:
            errors.append(
                f"{response.status_code} for {case.as_curl_command(base_url=base_url)}\n"
                f"{response.text[:300]}"
            )

    try:
        run()
    except Unsatisfiable:
        pass  # nothing in the operation can be made invalid (no parameters, no body)
    return errors


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_no_request_gets_a_server_error(live_server, demo, subtests, monkeypatch, redis_conn):
    """(``redis_conn`` empties the suite's Redis after: the fuzzing queues export jobs and
    pauses queues.)"""
    from django.db import connection

    # The server's request threads each open a connection: close them after each request,
    # or the test database cannot be dropped at the end.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    # 127.0.0.1 (not localhost: no IPv6 try first) and a connection per request (keep-alive
    # with the development server waits on delayed ACKs): 10 ms a request instead of 100.
    base_url = live_server.url.replace("localhost", "127.0.0.1")
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/")
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    assert len(operations) > 40  # the whole API, not a schema that failed to load
    sessions = {}
    for role, token in demo["tokens"].items():
        sessions[role] = requests.Session()
        sessions[role].headers.update(Authorization=f"Token {token}", Connection="close")
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if not ONLY.search(label):
            continue
        roles = ("admin",) if operation.path.startswith("/api/v1/queues/") else ROLES
        for role in roles:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                with subtests.test(msg=f"{label} as {role} ({mode.value})"):
                    errors = _fuzz(operation, mode, base_url, sessions[role], demo["targets"])
                    assert not errors, "\n\n".join(errors)
