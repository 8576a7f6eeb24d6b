"""Assignment: eligibility, manual assignment of one run, auto-assign (preview and apply),
push projects, and Start next task taking my reserved runs first."""

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from audits.models import ReviewOutcome
from audits.rollups import quality_touch
from blueprints.models import Blueprint
from core.exceptions import ApplicationError, Conflict, InvalidTransition
from projects import services as project_services
from projects.models import Membership, Role
from tasks import services
from tasks.batch import batch_selection
from tasks.models import StageRun, Task, TaskEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def person(project, manager, name, *, capacity=10, skills=(), role=Role.ANNOTATOR):
    user = UserFactory(username=name)
    project_services.membership_add(
        actor=manager, project=project, user=user, role=role, capacity=capacity, skills=skills
    )
    return user


def require_skills(project, *skills) -> None:
    """The active blueprint's annotate stage requires ``skills`` (edited in place)."""
    blueprint = Blueprint.objects.get(project=project, active=True)
    definition = dict(blueprint.definition)
    stages = [dict(s) for s in definition["stages"]]
    stages[0]["params"] = {**stages[0].get("params", {}), "required_skills": list(skills)}
    definition["stages"] = stages
    Blueprint.objects.filter(pk=blueprint.pk).update(
        definition=definition, updated_at=timezone.now()
    )


def reserve(project, manager, user, n) -> None:
    """Give ``user`` ``n`` open runs (reserved ready annotate runs of extra tasks)."""
    for i in range(n):
        task = services.task_create(actor=manager, project=project, name=f"{user}-load-{i}")
        task.runs.filter(stage_key="annotate").update(assignee=user)


def tasks(project, manager, n, **fields) -> list[Task]:
    return services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"t{i}", **fields} for i in range(n)],
    )


def selection(manager, chosen):
    return batch_selection(user=manager, ids=[t.pk for t in chosen])


@pytest.fixture
def team(project, manager):
    """The fixture project without its annotator ana (each case brings its own people)."""
    Membership.objects.filter(project=project, role=Role.ANNOTATOR).delete()
    return project


# people: (name, capacity, skills, open runs already); N runs; → expected runs per person
# (worked out by hand: least loaded first, ties by username, nobody past capacity).
CASES = [
    ("even split", [("a", 10, [], 0), ("b", 10, [], 0)], [], 6, {"a": 3, "b": 3}, 0),
    # a 2 open, b 0: b, b, a (2=2 → a), b, a, b
    ("load first", [("a", 10, [], 2), ("b", 10, [], 0)], [], 6, {"a": 2, "b": 4}, 0),
    # a full after two (a, b, a), the rest to b
    ("capacity", [("a", 2, [], 0), ("b", 10, [], 0)], [], 6, {"a": 2, "b": 4}, 0),
    ("skills", [("a", 10, ["lidar"], 0), ("b", 10, [], 0)], ["lidar"], 5, {"a": 5}, 0),
    # a has room for 1, b for 1 (cap 2, 1 open): 3 runs left over
    ("all full", [("a", 1, [], 0), ("b", 2, [], 1)], [], 5, {"a": 1, "b": 1}, 3),
    # a0 b1 c3: a, a, b, a, b, a (3,3,3 → a), b (3,3 → b)
    (
        "three",
        [("a", 10, [], 0), ("b", 10, [], 1), ("c", 10, [], 3)],
        [],
        7,
        {"a": 4, "b": 3},
        0,
    ),
    ("nobody skilled", [("a", 10, [], 0)], ["lidar"], 2, {}, 2),
]


@pytest.mark.parametrize(
    ("people", "skills", "n", "expected", "left"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_auto_assign_splits_runs_by_skills_capacity_and_load(
    team, manager, people, skills, n, expected, left
):
    users = {}
    for name, capacity, held, _ in people:
        users[name] = person(team, manager, name, capacity=capacity, skills=held)
    for name, _, _, load in people:
        reserve(team, manager, users[name], load)
    if skills:
        require_skills(team, *skills)
    chosen = tasks(team, manager, n)
    plan = services.auto_assign_plan(actor=manager, selection=selection(manager, chosen))
    assert plan.counts() == expected
    assert len(plan.unassignable) == left
    assert not StageRun.objects.filter(task__in=chosen).exclude(assignee=None).exists()
    applied = services.auto_assign_apply(
        actor=manager, selection=selection(manager, chosen), expected=plan.token
    )
    assert applied.applied and applied.counts() == expected
    got = {}
    for name in (
        StageRun.objects.filter(task__in=chosen)
        .exclude(assignee=None)
        .values_list("assignee__username", flat=True)
    ):
        got[name] = got.get(name, 0) + 1
    assert got == expected


def test_unassignable_runs_say_why(team, manager):
    person(team, manager, "a", skills=[])
    require_skills(team, "lidar")
    chosen = tasks(team, manager, 1)
    plan = services.auto_assign_plan(actor=manager, selection=selection(manager, chosen))
    assert plan.unassignable == [
        {
            "task": chosen[0].pk,
            "task_name": "t0",
            "stage": "annotate",
            "replica": 0,
            "reason": "nobody eligible: lacks skills lidar",
        }
    ]
    person(team, manager, "b", skills=["lidar"], capacity=0)
    plan = services.auto_assign_plan(actor=manager, selection=selection(manager, chosen))
    assert plan.unassignable[0]["reason"] == "every eligible annotator is at capacity"


def test_named_annotators_and_consensus_replicas(project, manager):
    from blueprints import services as blueprint_services

    blueprint = blueprint_services.blueprint_create_from_example(
        actor=manager, project=project, example="driving-scene"
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    Membership.objects.filter(project=project, role=Role.ANNOTATOR).delete()
    for name in ("a1", "a2", "a3", "a4"):
        person(project, manager, name, skills=["driving"])
    task = services.task_create(
        actor=manager, project=project, name="clip", annotators=["a1", "a2", "a4"]
    )
    plan = services.auto_assign_plan(actor=manager, selection=selection(manager, [task]))
    weather = [
        (r.replica, s.username) for s in plan.shares for r in s.runs if r.stage_key == "weather"
    ]
    # Three replicas, three different people, none of them a3 (not named on the task).
    assert sorted(name for _, name in weather) == ["a1", "a2", "a4"]


def test_weighting_by_quality_gives_the_better_annotator_more(team, manager):
    a, b = person(team, manager, "a"), person(team, manager, "b")
    chosen = tasks(team, manager, 4)
    # First-pass rates: a 2 of 2 accepted (1.0), b 1 of 2 (0.5); no audits (accuracy None).
    for user, accepted in ((a, True), (a, True), (b, True), (b, False)):
        ReviewOutcome.objects.create(
            project=team,
            task=chosen[0],
            stage_key="annotate",
            attempt=1,
            annotator=user,
            decided_by=manager,
            source="review",
            accepted=accepted,
            first=True,
        )
    quality_touch(team.pk, [timezone.now()])
    plain = services.auto_assign_plan(actor=manager, selection=selection(manager, chosen))
    assert plain.counts() == {"a": 2, "b": 2}
    # (load + 1) / (0.5 + quality): a 1/1.5, b 1/1 → a; a 2/1.5 vs b 1 → b; a 1.33 vs 2 → a;
    # a 2 vs b 2 → a (by name).
    weighted = services.auto_assign_plan(
        actor=manager, selection=selection(manager, chosen), weight_by_quality=True
    )
    assert weighted.counts() == {"a": 3, "b": 1}


def test_a_stale_preview_is_refused_with_the_new_plan(team, manager):
    a = person(team, manager, "a")
    person(team, manager, "b")
    chosen = tasks(team, manager, 4)
    preview = services.auto_assign_plan(actor=manager, selection=selection(manager, chosen))
    assert preview.counts() == {"a": 2, "b": 2}
    services.stage_start(actor=a, task=chosen[0], stage_key="annotate")  # meanwhile
    with pytest.raises(Conflict, match="changed since the preview") as refused:
        services.auto_assign_apply(
            actor=manager, selection=selection(manager, chosen), expected=preview.token
        )
    assert refused.value.extra["plan"]["assignments"][0]["username"] == "b"
    assert not TaskEvent.objects.filter(kind="run_assigned").exists()
    # Counts work as well as the token.
    with pytest.raises(Conflict):
        services.auto_assign_apply(
            actor=manager, selection=selection(manager, chosen), expected=preview.counts()
        )
    done = services.auto_assign_apply(
        actor=manager, selection=selection(manager, chosen), expected={"b": 2, "a": 1}
    )
    assert done.assigned == 3


def test_apply_writes_one_event_per_run_and_my_work_shows_them(team, manager):
    from tasks.selectors import my_work_runs

    a = person(team, manager, "a")
    chosen = tasks(team, manager, 2)
    services.auto_assign_apply(actor=manager, selection=selection(manager, chosen))
    events = list(TaskEvent.objects.filter(kind="run_assigned").order_by("task_id"))
    assert [(e.task_id, e.stage_key, e.actor, e.data) for e in events] == [
        (t.pk, "annotate", manager, {"replica": 0, "to": "a", "from": None, "via": "auto"})
        for t in chosen
    ]
    assert {r.task_id for r in my_work_runs(user=a)} == {t.pk for t in chosen}


def test_only_managers_auto_assign(project, manager, annotator):
    chosen = tasks(project, manager, 1)
    with pytest.raises(PermissionDenied):
        services.auto_assign_plan(actor=annotator, selection=Task.objects.filter(pk=chosen[0].pk))


def test_auto_assign_of_200_runs_is_bounded(team, manager, django_assert_max_num_queries):
    for name in ("a", "b", "c"):
        person(team, manager, name, capacity=100)
    chosen = tasks(team, manager, 200)
    # Measured: 8 for the plan, 19 to apply (with notifications) — the same for 20 runs.
    with django_assert_max_num_queries(9):
        plan = services.auto_assign_plan(actor=manager, selection=selection(manager, chosen))
    assert plan.counts() == {"a": 67, "b": 67, "c": 66}
    with django_assert_max_num_queries(20):
        done = services.auto_assign_apply(
            actor=manager, selection=selection(manager, chosen), expected=plan.token
        )
    assert done.assigned == 200
    assert TaskEvent.objects.filter(kind="run_assigned").count() == 200


# --- manual assignment ------------------------------------------------------------------


def test_manual_assign_reserves_clears_and_writes_events(team, manager):
    a, b = person(team, manager, "a"), person(team, manager, "b")
    task = tasks(team, manager, 1)[0]
    run = services.run_assign(actor=manager, task=task, stage_key="annotate", user=a)
    assert run.assignee == a and run.status == "ready"
    services.run_assign(actor=manager, task=task, stage_key="annotate", user=b)
    services.run_assign(actor=manager, task=task, stage_key="annotate", user=None)
    data = [e.data for e in task.events.filter(kind="run_assigned").order_by("id")]
    assert data == [
        {"replica": 0, "to": "a", "from": None, "via": "manual"},
        {"replica": 0, "to": "b", "from": "a", "via": "manual"},
        {"replica": 0, "to": None, "from": "b", "via": "manual"},
    ]
    assert task.runs.get(stage_key="annotate").assignee is None


def test_manual_assign_refuses_with_the_reason(team, manager, reviewer, annotator):
    a = person(team, manager, "a", capacity=1)
    require_skills(team, "lidar")
    task = tasks(team, manager, 1)[0]
    with pytest.raises(ApplicationError, match="a cannot take this run: lacks skills lidar"):
        services.run_assign(actor=manager, task=task, stage_key="annotate", user=a)
    with pytest.raises(ApplicationError, match="not an annotator of the project"):
        services.run_assign(actor=manager, task=task, stage_key="annotate", user=reviewer)
    require_skills(team)
    task.blueprint.refresh_from_db()
    reserve(team, manager, a, 1)
    with pytest.raises(ApplicationError, match=r"at capacity \(1 open of 1\)"):
        services.run_assign(actor=manager, task=task, stage_key="annotate", user=a)
    forced = services.run_assign(actor=manager, task=task, stage_key="annotate", user=a, force=True)
    assert forced.assignee == a
    with pytest.raises(PermissionDenied):
        services.run_assign(actor=a, task=task, stage_key="annotate", user=None)


def test_manual_assign_refuses_a_run_that_is_not_ready(project, manager, annotator):
    task = tasks(project, manager, 1)[0]
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    with pytest.raises(InvalidTransition, match="transfer"):
        services.run_assign(actor=manager, task=task, stage_key="annotate", user=None)
    with pytest.raises(InvalidTransition, match="blocked, not ready"):
        services.run_assign(actor=manager, task=task, stage_key="review", user=None)


def test_the_people_to_choose_from_carry_load_and_reason(team, manager):
    from tasks.services.assignment import assignable_people

    person(team, manager, "a", skills=["lidar"])
    person(team, manager, "b")
    require_skills(team, "lidar")
    task = tasks(team, manager, 2)[0]
    reserve(team, manager, Membership.objects.get(user__username="a").user, 0)
    task.runs.filter(stage_key="annotate")
    run = task.runs.get(stage_key="annotate")
    people = assignable_people(task=Task.objects.get(pk=task.pk), run=run)
    assert [(p["username"], p["load"], p["reason"]) for p in people] == [
        ("a", 0, None),
        ("b", 0, "lacks skills lidar"),
    ]


# --- Start next task and push projects --------------------------------------------------


def test_start_next_task_takes_my_reserved_run_first(team, manager):
    a = person(team, manager, "a")
    urgent, *_ = tasks(team, manager, 1, priority="urgent")
    mine = tasks(team, manager, 1, priority="low")[0]
    services.run_assign(actor=manager, task=mine, stage_key="annotate", user=a)
    started = services.stage_claim_next(actor=a)
    assert started.task_id == mine.pk and started.status == "in_progress"
    assert services.stage_claim_next(actor=a).task_id == urgent.pk


def test_nobody_else_takes_a_reserved_run(team, manager):
    a, b = person(team, manager, "a"), person(team, manager, "b")
    task = tasks(team, manager, 1)[0]
    services.run_assign(actor=manager, task=task, stage_key="annotate", user=a)
    assert services.stage_claim_next(actor=b) is None
    with pytest.raises(PermissionDenied, match="a's"):
        services.stage_start(actor=b, task=task, stage_key="annotate")


def push(project) -> None:
    project.settings = {**project.settings, "assignment": "push"}
    project.save(update_fields=["settings"])


def test_push_projects_assign_on_creation_single_and_bulk(
    team, manager, django_assert_max_num_queries
):
    person(team, manager, "a", capacity=100)
    person(team, manager, "b", capacity=100)
    push(team)
    one = services.task_create(actor=manager, project=team, name="one")
    assert one.runs.get(stage_key="annotate").assignee.username == "a"
    assert one.events.get(kind="run_assigned").data["via"] == "push"
    with django_assert_max_num_queries(40):
        many = tasks(team, manager, 50)
    names = list(
        StageRun.objects.filter(task__in=many, stage_key="annotate").values_list(
            "assignee__username", flat=True
        )
    )
    # a holds "one": b, a (1 = 1), b, a … → 25 each
    assert names.count("a") == 25 and names.count("b") == 25


def test_push_projects_assign_reviews_when_they_become_ready(project, manager, annotator):
    push(project)
    task = services.task_create(actor=manager, project=project, name="one")
    run = task.runs.get(stage_key="annotate")
    assert run.assignee == annotator  # ana, the only annotator
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    services.annotation_create(
        actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
    )
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    review = task.runs.get(stage_key="review")
    assert review.status == "ready" and review.assignee.username == "ravi"
    assert task.events.filter(kind="run_assigned", stage_key="review").get().data["via"] == "push"


def test_pull_projects_leave_new_runs_free(project, manager):
    task = services.task_create(actor=manager, project=project, name="one")
    assert task.runs.get(stage_key="annotate").assignee is None


def test_a_project_switches_to_push_on_its_form_and_over_the_api(client, api_as, project, manager):
    from django.urls import reverse

    from activity.models import Activity

    client.force_login(manager)
    url = reverse("projects:edit", args=[project.slug])
    page = client.get(url)
    assert 'name="assignment"' in page.content.decode()
    response = client.post(
        url,
        {
            "name": project.name,
            "description": "",
            "delivery": project.delivery,
            "assignment": "push",
            "version": project.version,
        },
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.settings["assignment"] == "push"
    entry = Activity.objects.filter(verb="project.updated").latest("id")
    assert (entry.before, entry.after) == ({"assignment": "pull"}, {"assignment": "push"})
    api = api_as(manager)
    assert api.get(f"/api/v1/projects/{project.pk}/").json()["assignment"] == "push"
    answer = api.patch(f"/api/v1/projects/{project.pk}/", {"assignment": "pull"}, format="json")
    assert answer.status_code == 200 and answer.json()["assignment"] == "pull"
    bad = api.patch(f"/api/v1/projects/{project.pk}/", {"assignment": "shove"}, format="json")
    assert bad.status_code == 400 and "assignment" in bad.json()


# --- pages and API ----------------------------------------------------------------------


def test_the_preview_page_then_apply_with_the_message(client, team, manager):
    person(team, manager, "a")
    person(team, manager, "b")
    chosen = tasks(team, manager, 3)
    client.force_login(manager)
    ids = [str(t.pk) for t in chosen]
    preview = client.post("/tasks/auto-assign/", {"ids": ids}, HTTP_HX_REQUEST="true")
    html = preview.content.decode()
    assert preview.status_code == 200 and "Auto-assign preview" in html
    assert "<strong>3 go to 2 people</strong>" in html
    assert '<th scope="row">a</th>' in html and "Apply: assign 3 runs" in html
    token = preview.context["plan"].token
    assert not TaskEvent.objects.filter(kind="run_assigned").exists()
    applied = client.post(
        "/tasks/auto-assign/", {"ids": ids, "apply": "1", "token": token}, HTTP_HX_REQUEST="true"
    )
    assert applied.status_code == 200 and applied.headers["HX-Redirect"] == "/tasks/"
    page = client.get("/tasks/")
    assert "3 runs assigned to 2 people." in page.content.decode()


def test_the_preview_of_all_matching_a_filter_and_a_stale_apply(client, team, manager):
    a = person(team, manager, "a")
    chosen = tasks(team, manager, 2, batch="north")
    tasks(team, manager, 1, batch="south")
    client.force_login(manager)
    form = {"all_matching": "1", "batch": "north"}
    preview = client.post("/tasks/auto-assign/", form)
    assert preview.context["plan"].counts() == {"a": 2}
    services.stage_start(actor=a, task=chosen[0], stage_key="annotate")
    stale = client.post(
        "/tasks/auto-assign/", {**form, "apply": "1", "token": preview.context["plan"].token}
    )
    assert '<p class="errors" role="alert">The assignment changed since the preview' in (
        stale.content.decode()
    )
    assert stale.context["plan"].counts() == {"a": 1}
    assert not TaskEvent.objects.filter(kind="run_assigned").exists()


def test_the_task_page_card_assigns_one_run(client, team, manager):
    a = person(team, manager, "a", skills=["lidar"])
    person(team, manager, "b")
    require_skills(team, "lidar")
    reserve(team, manager, a, 2)
    task = tasks(team, manager, 1)[0]
    client.force_login(manager)
    detail = client.get(f"/tasks/{task.pk}/").content.decode()
    assert f'hx-get="/tasks/{task.pk}/assign/"' in detail
    card = client.get(f"/tasks/{task.pk}/assign/", HTTP_HX_REQUEST="true").content.decode()
    assert "a (2 open)" in card and "b — lacks skills lidar" in card
    response = client.post(
        f"/tasks/{task.pk}/assign/", {"stage": "annotate", "replica": "0", "username": "a"}
    )
    assert response.status_code == 302
    assert task.runs.get(stage_key="annotate").assignee == a
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "“annotate” is reserved for a." in page
    refused = client.post(
        f"/tasks/{task.pk}/assign/", {"stage": "annotate", "username": "b"}, follow=True
    )
    assert "b cannot take this run: lacks skills lidar." in refused.content.decode()


def test_the_api_previews_applies_and_assigns(api_as, team, manager, annotator):
    person(team, manager, "a")
    person(team, manager, "b")
    chosen = tasks(team, manager, 3)
    api = api_as(manager)
    ids = [t.pk for t in chosen]
    preview = api.post("/api/v1/tasks/auto-assign/", {"ids": ids}, format="json").json()
    assert preview["assignments"] == [
        {"username": "a", "runs": 2, "load": 0, "capacity": 10},
        {"username": "b", "runs": 1, "load": 0, "capacity": 10},
    ]
    assert preview["applied"] is False and preview["unassignable"] == []
    stale = api.post(
        "/api/v1/tasks/auto-assign/",
        {"ids": ids, "apply": True, "expected": {"a": 3}},
        format="json",
    )
    assert stale.status_code == 409 and stale.json()["assignments"][0]["runs"] == 2
    done = api.post(
        "/api/v1/tasks/auto-assign/",
        {"ids": ids, "apply": True, "expected": preview["token"]},
        format="json",
    ).json()
    assert done["applied"] is True
    assert StageRun.objects.filter(task__in=chosen).exclude(assignee=None).count() == 3
    url = f"/api/v1/tasks/{ids[0]}/stages/annotate/assign/"
    moved = api.post(url, {"username": "b"}, format="json")
    assert moved.status_code == 200
    assert moved.json() == {
        "task": ids[0],
        "stage": "annotate",
        "replica": 0,
        "status": "ready",
        "assignee": "b",
    }
    cleared = api.post(url, {"username": None}, format="json").json()
    assert cleared["assignee"] is None
    unknown = api.post(url, {"username": "nobody"}, format="json")
    assert unknown.status_code == 400 and unknown.json() == {"username": ["No user named nobody."]}
    by_filter = api.post("/api/v1/tasks/auto-assign/", {"filter": {"bogus": 1}}, format="json")
    assert by_filter.status_code == 400
    assert api_as(annotator).post(url, {"username": "b"}, format="json").status_code == 404
