"""Quality control: audit sampling settings, the one-click random-sample review, the card."""

from pathlib import Path

import pytest
import yaml
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse

from activity.models import Activity
from blueprints import engine
from blueprints.models import Blueprint
from blueprints.services import blueprint_activate_newest, blueprint_save
from blueprints.validation import validate
from core.exceptions import ApplicationError
from projects import selectors, services
from tasks.models import StageRun

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blueprints"


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


def use_blueprint(project, manager, definition: dict) -> Blueprint:
    blueprint, _ = blueprint_save(actor=manager, project=project, definition=definition)
    return blueprint_activate_newest(actor=manager, project=project, name=blueprint.name)


# --- audit sampling settings ---------------------------------------------------------------


def test_audit_sampling_is_off_until_set(project):
    assert selectors.audit_settings(project) == (0.0, "fixless")


def test_it_saves_audit_settings_and_records_the_change_once(project, manager):
    project = services.project_quality_settings_update(
        actor=manager, project=project, audit_percent=12.5, audit_kind="fixless"
    )
    assert selectors.audit_settings(project) == (12.5, "fixless")
    project.refresh_from_db()
    assert project.settings == {"audit_percent": 12.5, "audit_kind": "fixless"}
    activity = Activity.objects.get(verb="project.quality_updated")
    assert (activity.before, activity.after) == (
        {"audit_percent": None, "audit_kind": None},
        {"audit_percent": 12.5, "audit_kind": "fixless"},
    )
    # Saving the same values again changes and records nothing.
    services.project_quality_settings_update(
        actor=manager, project=project, audit_percent=12.5, audit_kind="fixless"
    )
    assert Activity.objects.filter(verb="project.quality_updated").count() == 1


def test_it_refuses_an_audit_share_outside_0_to_100(project, manager):
    for percent in (-1, 100.5, True, "10"):
        with pytest.raises(ApplicationError) as info:
            services.project_quality_settings_update(
                actor=manager, project=project, audit_percent=percent, audit_kind="fixless"
            )
        assert info.value.field == "audit_percent", percent
    project.refresh_from_db()
    assert project.settings == {}


def test_standard_audits_need_stage_level_delivery(project, manager):
    with pytest.raises(ApplicationError, match="need per-stage delivery") as info:
        services.project_quality_settings_update(
            actor=manager, project=project, audit_percent=10, audit_kind="standard"
        )
    assert info.value.field == "audit_kind"
    with pytest.raises(ApplicationError, match="one of fixless, standard"):
        services.project_quality_settings_update(
            actor=manager, project=project, audit_percent=10, audit_kind="thorough"
        )

    project = services.project_update(actor=manager, project=project, delivery="stage")
    project = services.project_quality_settings_update(
        actor=manager, project=project, audit_percent=10, audit_kind="standard"
    )
    assert selectors.audit_settings(project) == (10.0, "standard")
    # Back to task-level delivery: what is stored stays, the reader says fixless.
    project = services.project_update(actor=manager, project=project, delivery="task")
    assert selectors.audit_settings(project) == (10.0, "fixless")


@pytest.mark.parametrize(
    ("role", "refusal"),
    [("annotator", PermissionDenied), ("reviewer", PermissionDenied), ("outsider", Http404)],
)
def test_only_managers_change_quality_control(project, users, role, refusal):
    with pytest.raises(refusal):
        services.project_quality_settings_update(
            actor=users[role], project=project, audit_percent=50, audit_kind="fixless"
        )
    with pytest.raises(refusal):
        services.project_random_sample_review_add(actor=users[role], project=project, percent=5)
    project.refresh_from_db()
    assert project.settings == {}
    assert project.blueprints.count() == 1


# --- random-sample review ------------------------------------------------------------------


def test_one_click_puts_a_random_sample_in_front_of_the_review(project, manager):
    blueprint = services.project_random_sample_review_add(
        actor=manager, project=project, percent=20
    )

    assert (blueprint.name, blueprint.version, blueprint.active) == ("default", 2, True)
    assert project.blueprints.filter(active=True).get() == blueprint
    stages = {s["key"]: s for s in blueprint.definition["stages"]}
    assert list(stages) == ["annotate", "random_sample", "review"]
    assert stages["random_sample"] | {"name": None} == {
        "key": "random_sample",
        "name": None,
        "kind": "logic",
        "depends_on": ["annotate"],
        "rules": [{"match": "random_sample", "percent": 20, "to": "review"}],
        "else": "done",
    }
    assert stages["review"]["depends_on"] == ["random_sample"]

    # The engine sends about a fifth of the tasks to review and the rest to done.
    spec = validate(blueprint.definition)
    annotated = {"annotate": engine.Run(status=engine.COMPLETED)}
    reviewed = 0
    for n in range(400):
        runs = engine.advance(spec, annotated, [], engine.TaskFacts(seed=f"task-{n}"))
        routed = runs["random_sample"].routed_to
        assert runs["review"].status == (engine.READY if routed == "review" else engine.SKIPPED)
        assert engine.task_status(spec, runs) in {"pending_review", "review_passed"}
        reviewed += routed == "review"
    assert 50 <= reviewed <= 110


def test_one_click_adds_a_review_stage_when_there_is_none(project, manager):
    doc = example("default")
    doc["name"] = "no-review"
    doc["stages"] = [doc["stages"][0]]
    use_blueprint(project, manager, doc)

    blueprint = services.project_random_sample_review_add(
        actor=manager, project=project, percent=7.5
    )

    assert (blueprint.name, blueprint.version, blueprint.active) == ("no-review", 2, True)
    review = validate(blueprint.definition).by_key["review"]
    assert (review.kind, review.reviews, review.depends_on) == (
        "review",
        ["annotate"],
        ["random_sample"],
    )
    assert blueprint.definition["stages"][1]["rules"][0]["percent"] == 7.5


def test_one_click_refuses_a_review_that_logic_already_routes(project, manager):
    use_blueprint(project, manager, example("pick-and-place"))

    with pytest.raises(ApplicationError, match="already routed by logic stage “route”"):
        services.project_random_sample_review_add(actor=manager, project=project, percent=20)
    assert project.blueprints.filter(name="pick-and-place").count() == 1


def test_the_overview_tells_full_sampled_and_rule_based_review_apart(project, manager):
    use_blueprint(project, manager, example("pick-and-place"))
    (review,) = selectors.quality_overview(project=project).reviews
    assert (review.key, review.mode, review.reviews) == (
        "full_review",
        "rules",
        ["segments", "objects"],
    )
    assert review.routing == [
        "logic stage “route” sends tasks here on: object & no gripper_open · 20% sample · "
        "by alice · time > 1800 s · batch night-shift"
    ]

    use_blueprint(project, manager, example("default"))
    assert [r.mode for r in selectors.quality_overview(project=project).reviews] == ["full"]
    services.project_random_sample_review_add(actor=manager, project=project, percent=12)
    (review,) = selectors.quality_overview(project=project).reviews
    assert (review.mode, review.percent, review.percent_label) == ("sample", 12, "12")


def test_one_click_activates_even_when_a_newer_inactive_version_exists(project, manager):
    doc = example("default")
    doc["description"] = "A draft nobody activated"
    blueprint_save(actor=manager, project=project, definition=doc, new_version=True)
    v1 = project.blueprints.get(version=1)
    from blueprints.services import blueprint_activate

    blueprint_activate(actor=manager, blueprint=v1)

    blueprint = services.project_random_sample_review_add(
        actor=manager, project=project, percent=20
    )

    assert (blueprint.version, blueprint.active) == (3, True)
    assert blueprint.definition["description"] == v1.definition["description"]


# --- the card ------------------------------------------------------------------------------


def test_the_card_shows_checks_reviews_and_qc_flags(
    client, manager, project, task, django_assert_max_num_queries
):
    doc = example("default")
    doc["stages"][0]["checks"] = [
        {"rule": "min_count", "class": "object", "count": 1},
        {"rule": "max_count", "class": "object", "count": 30, "severity": "warn"},
    ]
    use_blueprint(project, manager, doc)
    StageRun.objects.filter(task=task, stage_key="annotate").update(
        qc_flags=["At most 30 object allowed; there are 31."]
    )
    client.force_login(manager)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("projects:edit", args=[project.slug]))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="quality-control"' in body
    assert '<span class="badge badge-error">error</span> min_count of object (1)' in body
    assert '<span class="badge badge-warn">warn</span> max_count of object (30)' in body
    assert '<strong id="qc-flagged-runs">1</strong>' in body
    assert "full review</span> Review stage <strong>review</strong> (of annotate): every task." in (
        " ".join(body.split())
    )
    assert "Add random-sample review" in body
    assert 'name="percent" value="20"' in body


def test_the_card_saves_audit_settings_with_htmx(client, manager, project):
    client.force_login(manager)
    url = reverse("projects:quality-control", args=[project.slug])

    response = client.post(url, {"audit_percent": "5", "audit_kind": "fixless"}, **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="quality-control"')
    assert "Audit sampling saved." in body
    assert 'name="audit_percent" value="5"' in body
    project.refresh_from_db()
    assert selectors.audit_settings(project) == (5.0, "fixless")


def test_the_card_explains_why_standard_audits_are_refused(client, manager, project):
    client.force_login(manager)
    url = reverse("projects:quality-control", args=[project.slug])

    fragment = client.post(url, {"audit_percent": "5", "audit_kind": "standard"}, **HTMX)
    body = fragment.content.decode()
    assert body.lstrip().startswith('<section id="quality-control"')
    assert '<p class="field-error" role="alert">Standard audits (accept, reject or fix)' in body
    assert 'name="audit_percent" value="5"' in body  # the input is kept

    response = client.post(url, {"audit_percent": "5", "audit_kind": "standard"})

    assert response.status_code == 200  # the whole page, the error beside the field
    body = response.content.decode()
    assert "<h1>Edit Pick and place</h1>" in body
    assert "Standard audits (accept, reject or fix) need per-stage delivery" in body
    project.refresh_from_db()
    assert project.settings == {}

    response = client.post(url, {"audit_percent": "50", "audit_kind": "fixless"})
    assert response.status_code == 302
    assert response["Location"] == reverse("projects:edit", args=[project.slug])


def test_the_one_click_button_makes_a_version(client, manager, project):
    client.force_login(manager)
    url = reverse("projects:quality-random-sample", args=[project.slug])

    response = client.post(url, {"percent": "15", "review_stage": "review"}, **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Random-sample review added: default v2 is active." in body
    assert "(of annotate): 15 % of tasks, drawn per task" in " ".join(body.split())
    assert "Add random-sample review" not in body  # no full review left to sample
    assert project.blueprints.get(active=True).version == 2


def test_an_invalid_blueprint_is_a_message_not_a_500(client, manager, project):
    # A document stored before a validation rule it now breaks (an unknown check type).
    doc = example("default")
    doc["stages"][0]["checks"] = [{"rule": "retired_check"}]
    Blueprint.objects.filter(project=project).update(definition=doc)
    client.force_login(manager)

    page = client.get(reverse("projects:edit", args=[project.slug]))
    assert page.status_code == 200
    assert "unknown check “retired_check”" in page.content.decode()

    url = reverse("projects:quality-random-sample", args=[project.slug])
    response = client.post(url, {"percent": "15"}, **HTMX)
    assert response.status_code == 200
    assert "The blueprint is not valid: stages[0].checks[0].rule: unknown check" in (
        response.content.decode()
    )
    assert project.blueprints.count() == 1


def test_the_project_page_says_how_much_is_audited(client, manager, reviewer, project):
    url = reverse("projects:detail", args=[project.slug])
    client.force_login(manager)
    assert "<dt>Audit sampling</dt><dd>off" in client.get(url).content.decode()

    services.project_quality_settings_update(
        actor=manager, project=project, audit_percent=2.5, audit_kind="fixless"
    )
    body = client.get(url).content.decode()
    assert "2.5 % of delivered units, fixless audits" in body
    assert "#quality-control" in body
    client.force_login(reviewer)
    assert "#quality-control" not in client.get(url).content.decode()
