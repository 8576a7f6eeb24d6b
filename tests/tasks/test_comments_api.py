"""The JSON API for comments, invalid samples and re-synced samples; the re-sync page."""

from pathlib import Path

import pytest

from tasks import services
from tests.helpers.hdf5 import write_aloha

pytestmark = pytest.mark.django_db


def test_comment_pinned_to_a_frame_then_listed_in_bounded_queries(
    api_as, work, reviewer, annotator, django_assert_max_num_queries
):
    url = f"/api/v1/tasks/{work.pk}/comments/"
    response = api_as(reviewer).post(
        url,
        {"kind": "problem", "body": "Gripper hidden", "sample": work.sample.pk, "frame": 4},
        format="json",
    )
    assert response.status_code == 201, response.content
    problem = response.json()
    assert problem["frame"] == 4 and problem["author"] == "ravi" and not problem["resolved"]
    for n in range(20):
        services.comment_create(actor=annotator, task=work, body=f"note {n}")
    client = api_as(annotator)
    with django_assert_max_num_queries(12):  # the same for 2 or 200 comments
        listed = client.get(url).json()
    assert len(listed) == 21 and listed[0]["body"] == "Gripper hidden"
    resolved = api_as(reviewer).post(f"{url}{problem['id']}/resolve/", {}, format="json")
    assert resolved.json()["resolved_by"] == "ravi"


def test_a_comment_with_a_frame_past_the_end_answers_400_naming_the_range(api_as, work, reviewer):
    response = api_as(reviewer).post(
        f"/api/v1/tasks/{work.pk}/comments/",
        {"body": "x", "sample": work.sample.pk, "frame": 99},
        format="json",
    )
    assert response.status_code == 400
    assert "frames 0–11" in str(response.json())


def test_mark_a_sample_invalid_and_restore_it_over_the_api(api_as, work, annotator):
    client = api_as(annotator)
    url = f"/api/v1/tasks/{work.pk}/samples/{work.sample.pk}/invalid/"
    response = client.post(url, {"stage": "annotate", "reason": "Lens covered"}, format="json")
    assert response.status_code == 201, response.content
    again = client.post(url, {"stage": "annotate", "reason": "twice"}, format="json")
    assert again.status_code == 409 and "Lens covered" in str(again.json())
    listed = client.get(f"/api/v1/tasks/{work.pk}/invalid-samples/").json()
    assert [(f["sample"], f["reason"]) for f in listed] == [(work.sample.pk, "Lens covered")]
    assert client.delete(url).status_code == 204
    assert client.get(f"/api/v1/tasks/{work.pk}/invalid-samples/").json() == []


def test_the_resync_page_queues_a_job_and_the_task_sees_the_changed_sample(
    client,
    api_as,
    work,
    manager,
    annotator,
    dataset,
    run_jobs,
    django_capture_on_commit_callbacks,
):
    write_aloha(Path(dataset.source_path) / "episode_0.hdf5", T=10, seed=3)
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/projects/{dataset.project.slug}/data/{dataset.pk}/resync/", follow=True
        )
    assert "Re-sync queued" in response.content.decode()
    run_jobs("imports")
    sync = f"/api/v1/tasks/{work.pk}/samples/sync/"
    changed = api_as(annotator).get(sync).json()["changed"]
    assert [c["name"] for c in changed] == ["episode_0"]
    assert api_as(annotator).post(sync).json() == {"samples": ["episode_0"], "invalidated": 0}
    assert api_as(annotator).get(sync).json()["changed"] == []


def test_an_uploaded_dataset_cannot_be_resynced(client, manager, dataset):
    dataset.source_path = ""
    dataset.save()
    client.force_login(manager)
    response = client.post(
        f"/projects/{dataset.project.slug}/data/{dataset.pk}/resync/", follow=True
    )
    assert "no server folder" in response.content.decode()


def test_the_invalid_tab_lists_invalid_samples_and_a_manager_restores_one(
    client, work, annotator, manager
):
    services.sample_mark_invalid(
        actor=annotator, task=work, sample=work.sample.pk, stage="annotate", reason="Dark frames"
    )
    client.force_login(manager)
    page = client.get(f"/tasks/{work.pk}/invalid/").content.decode()
    assert "Dark frames" in page and work.sample.name in page
    response = client.post(f"/tasks/{work.pk}/samples/{work.sample.pk}/restore/", follow=True)
    assert "Sample restored." in response.content.decode()
    assert not work.invalid_samples.exists()


def test_the_task_page_shows_comments_with_their_pins(client, work, reviewer):
    services.comment_create(
        actor=reviewer,
        task=work,
        kind="problem",
        body="Look at the <b>gripper</b>",
        sample=work.sample.pk,
        frame=2,
    )
    client.force_login(reviewer)
    page = client.get(f"/tasks/{work.pk}/").content.decode()
    assert "Look at the &lt;b&gt;gripper&lt;/b&gt;" in page
    assert f"{work.sample.name}</span>" not in page and ", frame 2" in page
