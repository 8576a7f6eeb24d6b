"""The task page's live refresh: one htmx GET answers the badge, stage strip and sidebar."""

import pytest
from django.urls import reverse

from tasks import services

pytestmark = pytest.mark.django_db


def test_live_refresh_answers_the_badge_stage_strip_and_sidebar_only(
    client, manager, annotator, task, django_assert_max_num_queries
):
    client.force_login(manager)
    url = reverse("tasks:detail", args=[task.pk])
    page = client.get(url).content.decode()
    assert 'hx-select-oob="#task-badge,#task-stages,#task-side-live"' in page
    assert "Live regions" not in page  # the template's comment stays a comment
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    with django_assert_max_num_queries(25):
        body = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="task-live").content.decode()
    for region in ("task-badge", "task-stages", "task-side-live"):
        assert f'id="{region}"' in body
    assert "Pending review" in body  # the work done elsewhere shows
    assert "History" not in body and "Comments" not in body and 'id="tab-panel"' not in body
    assert "<html" not in body
