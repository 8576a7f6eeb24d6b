"""The demo (``manage.py seed_demo``) gives the reports and the dashboard sections real
figures: six weeks of reviewed and audited work, three weeks of finished tasks."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from projects.models import Project
from reports import dashboard, selectors
from reports.periods import last_days

pytestmark = pytest.mark.django_db


def test_the_demo_gives_every_report_figures(settings):
    settings.STAGECRAFT_DEMO_QUALITY = True
    call_command("seed_demo")
    users = {u.username: u for u in get_user_model().objects.all()}
    project = Project.objects.get(slug="pick-and-place")
    period = last_days(90)

    for name in ("annotator", "annotator2"):
        totals = selectors.personal_report(user=users[name], period=period, project_ids=None)
        assert totals["totals"]["submitted"] > 10, name
        # People take minutes, not milliseconds, over a run.
        assert 8 * 60 <= totals["totals"]["median_seconds"] <= 25 * 60, name
        assert totals["quality"]["first_pass_rate"] is not None
        assert totals["quality"]["accuracy"] is not None
    reviewer = selectors.personal_report(user=users["reviewer"], period=period, project_ids=None)
    assert reviewer["totals"]["reviews"] > 10 and reviewer["totals"]["audits"] > 0

    team = selectors.team_report(projects=[project], period=period)
    assert {"annotator", "annotator2", "reviewer"} <= {p["username"] for p in team["people"]}
    assert team["total"]["rework"] > 0
    progress = selectors.project_report(project=project, period=last_days(30))
    assert progress["totals"]["tasks_completed"] > 5
    assert len({d["tasks_done"] for d in progress["by_day"]}) > 5  # completion grows

    annotator = dashboard.annotator_section(user=users["annotator"])
    assert annotator["queue_count"] > 0 and annotator["feedback_count"] > 0
    assert annotator["week"]["submitted"] > 0
    # What was submitted today took time too (not "8 submitted today, 0 s worked").
    assert annotator["today"]["submitted"] > 0 and annotator["today"]["active_seconds"] >= 8 * 60
    review = dashboard.reviewer_section(user=users["reviewer"])
    assert review["queue_count"] > 0 and review["audit_waiting"] > 0
