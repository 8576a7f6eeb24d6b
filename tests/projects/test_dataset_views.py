import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from projects.models import Dataset

pytestmark = pytest.mark.django_db


def frame_url(sample, camera="cam_high", index=0):
    return reverse("api:sample-frame", args=[sample.pk, camera, index])


def test_frame_endpoint_returns_the_stored_frame(client, annotator, dataset):
    client.force_login(annotator)
    sample = dataset.samples.get(index=1)
    response = client.get(frame_url(sample, "cam_low", 5) + "?encoding=png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    decoded = np.asarray(Image.open(io.BytesIO(response.content)))
    assert np.array_equal(decoded, dataset.source[1]["images"]["cam_low"][5])


def test_frame_endpoint_caches_with_an_etag(client, annotator, dataset):
    client.force_login(annotator)
    url = frame_url(dataset.samples.first())
    first = client.get(url)
    assert first["Content-Type"] == "image/jpeg"
    assert first["Cache-Control"] == "private, max-age=86400"
    again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    assert client.get(url + "?size=16")["ETag"] != first["ETag"]
    thumb = Image.open(io.BytesIO(client.get(url + "?size=16").content))
    assert max(thumb.size) == 16


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("cam_nope/0/", "camera"),
        ("cam_high/12/", "frame"),
        ("cam_high/0/?encoding=gif", "encoding"),
        ("cam_high/0/?size=abc", "size"),
        ("cam_high/0/?size=1", "size"),
    ],
)
def test_frame_endpoint_explains_bad_requests(client, annotator, dataset, path, field):
    client.force_login(annotator)
    sample = dataset.samples.first()
    response = client.get(f"/api/v1/samples/{sample.pk}/frames/{path}")
    assert response.status_code == 400
    assert field in response.json()


def test_frames_are_for_project_members_only(client, api_as, outsider, dataset):
    url = frame_url(dataset.samples.first())
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert api_as(None).get(url).status_code == 401
    assert (
        api_as(outsider).get(f"/api/v1/samples/{dataset.samples.first().pk}/series/").status_code
        == 404
    )


def test_series_endpoint(api_as, reviewer, dataset):
    sample = dataset.samples.get(index=0)
    body = api_as(reviewer).get(f"/api/v1/samples/{sample.pk}/series/").json()
    assert (body["fps"], body["num_frames"], body["frames"]) == (50.0, 12, list(range(12)))
    qpos = body["series"]["qpos"]
    assert qpos["role"] == "state" and qpos["names"][7] == "right_waist"
    assert np.allclose(qpos["values"], dataset.source[0]["qpos"], atol=1e-5)
    thin = api_as(reviewer).get(f"/api/v1/samples/{sample.pk}/series/?max_points=4").json()
    assert thin["frames"] == [0, 4, 7, 11]
    assert len(thin["series"]["action"]["values"]) == 4


def test_a_file_gone_missing_is_a_readable_error(api_as, reviewer, dataset):
    from projects.dataset_services import dataset_dir

    sample = dataset.samples.first()
    (dataset_dir(dataset) / sample.source["file"]).write_bytes(b"gone")
    response = api_as(reviewer).get(f"/api/v1/samples/{sample.pk}/series/")
    assert response.status_code == 422
    assert "episode_0.hdf5: not a readable HDF5 file" in response.json()["detail"]


def test_dataset_api(api_as, annotator, dataset):
    client = api_as(annotator)
    listing = client.get(f"/api/v1/projects/{dataset.project_id}/datasets/").json()
    assert [d["name"] for d in listing["results"]] == ["Fixture episodes"]
    detail = client.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert (detail["status"], detail["num_samples"], detail["error"]) == ("finished", 2, "")
    samples = client.get(f"/api/v1/datasets/{dataset.pk}/samples/").json()["results"]
    assert [(s["name"], s["num_frames"], s["fps"]) for s in samples] == [
        ("episode_0", 12, 50.0),
        ("episode_1", 12, 50.0),
    ]
    assert [c["name"] for c in samples[0]["cameras"]] == ["cam_high", "cam_low"]


def test_api_import_by_upload_and_by_server_path(
    api_as, manager, project, tmp_path, run_jobs, django_capture_on_commit_callbacks
):
    from tests.helpers.hdf5 import write_aloha

    write_aloha(tmp_path / "up" / "episode_0.hdf5")
    client = api_as(manager)
    url = f"/api/v1/projects/{project.pk}/datasets/"
    with (
        (tmp_path / "up" / "episode_0.hdf5").open("rb") as fh,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(url, {"name": "Up", "format": "hdf5", "files": [fh]})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["job_id"].startswith("import-dataset-")

    write_aloha(tmp_path / "server" / "episode_0.hdf5", seed=9)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {"name": "Server", "format": "hdf5", "path": str(tmp_path / "server")},
            format="json",
        )
    assert response.status_code == 202, response.content
    run_jobs("imports")
    assert sorted(Dataset.objects.values_list("name", "status")) == [
        ("Server", "finished"),
        ("Up", "finished"),
    ]


def test_api_import_refuses_paths_outside_the_import_folders(api_as, manager, project, settings):
    settings.STAGECRAFT_IMPORT_ROOTS = ["/nonexistent-imports"]
    response = api_as(manager).post(
        f"/api/v1/projects/{project.pk}/datasets/",
        {"name": "x", "format": "hdf5", "path": "/etc"},
        format="json",
    )
    assert response.status_code == 400
    assert "only read inside the import folders" in response.json()["path"][0]
    assert not Dataset.objects.exists()


def test_data_page_lists_datasets_with_thumbnails_in_bounded_queries(
    client, manager, dataset, django_assert_max_num_queries
):
    client.force_login(manager)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("projects:data", args=[dataset.project.slug]))
    body = response.content.decode()
    first = dataset.samples.get(index=0)
    assert f'src="/api/v1/samples/{first.pk}/frames/cam_high/0/?size=96"' in body
    assert "Create task from selection" in body
    assert "Import a dataset" in body


def test_annotators_see_data_but_no_import_form(client, annotator, dataset):
    client.force_login(annotator)
    body = client.get(reverse("projects:data", args=[dataset.project.slug])).content.decode()
    assert "Fixture episodes" in body
    assert "Import a dataset" not in body


def test_dataset_page_has_strips_and_plots(client, reviewer, dataset):
    client.force_login(reviewer)
    slug = dataset.project.slug
    body = client.get(reverse("projects:dataset", args=[slug, dataset.pk])).content.decode()
    sample = dataset.samples.first()
    strip_url = reverse("projects:sample-strip", args=[slug, sample.pk, "cam_high"])
    plot_url = reverse("projects:sample-plot", args=[slug, sample.pk])
    assert strip_url in body and plot_url in body
    strip = Image.open(io.BytesIO(client.get(strip_url).content))
    assert strip.height == 64 and strip.width > 8 * 64
    svg = client.get(plot_url)
    assert svg["Content-Type"] == "image/svg+xml"
    assert svg.content.decode().count("<polyline") == 14


def test_upload_form_queues_and_the_progress_partial_follows(
    client, manager, project, tmp_path, run_jobs, django_capture_on_commit_callbacks
):
    from tests.helpers.hdf5 import write_aloha

    write_aloha(tmp_path / "episode_0.hdf5")
    client.force_login(manager)
    with (
        (tmp_path / "episode_0.hdf5").open("rb") as fh,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("projects:data", args=[project.slug]),
            {"name": "From the page", "format": "hdf5", "files": [fh]},
        )
    dataset = Dataset.objects.get(name="From the page")
    assert response.status_code == 302
    assert response["Location"] == reverse("projects:dataset", args=[project.slug, dataset.pk])
    progress_url = reverse("projects:dataset-progress", args=[project.slug, dataset.pk])
    partial = client.get(progress_url, HTTP_HX_REQUEST="true").content.decode()
    assert 'value="0"' in partial and "Import progress of From the page" in partial
    run_jobs("imports")
    partial = client.get(progress_url, HTTP_HX_REQUEST="true").content.decode()
    assert 'value="100"' in partial


def test_upload_form_errors(client, manager, project):
    client.force_login(manager)
    response = client.post(
        reverse("projects:data", args=[project.slug]), {"name": "x", "format": "hdf5"}
    )
    assert "Choose files to upload or give a folder on the server." in response.content.decode()
    assert not Dataset.objects.exists()


def test_task_form_opens_with_the_selection_and_creates_the_task(client, manager, dataset):
    from tasks.models import Task

    client.force_login(manager)
    url = reverse("projects:task-from-selection", args=[dataset.project.slug])
    body = client.get(f"{url}?datasets={dataset.pk}&datasets=999&datasets=x").content.decode()
    assert f'value="{dataset.pk}" id="id_datasets_0" checked' in body
    assert '<option value="default" selected>default</option>' in body
    response = client.post(
        url,
        {
            "name": "From the data page",
            "datasets": [dataset.pk],
            "priority": "high",
            "annotators": ["ana"],
            "reviewers": ["ravi"],
            "blueprint": "default",
        },
    )
    task = Task.objects.get(name="From the data page")
    assert response["Location"] == reverse("tasks:detail", args=[task.pk])
    assert [d.pk for d in task.datasets.all()] == [dataset.pk]
    assert task.priority == "high" and [u.username for u in task.annotators.all()] == ["ana"]
    page = client.get(response["Location"]).content.decode()
    assert "From the data page" in page and "Pending start" in page


def test_task_form_errors_keep_the_input(client, manager, dataset):
    client.force_login(manager)
    url = reverse("projects:task-from-selection", args=[dataset.project.slug])
    response = client.post(url, {"name": "", "priority": "asap", "annotators": ["ravi"]})
    body = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in body and "Select a valid choice." in body


def test_plot_escapes_sample_names_and_images_forbid_scripts(client, manager, dataset):
    sample = dataset.samples.first()
    sample.name = 'x" onload="alert(1)" y="&'
    sample.save()
    client.force_login(manager)
    response = client.get(reverse("projects:sample-plot", args=[dataset.project.slug, sample.pk]))
    svg = response.content.decode()
    assert 'onload="alert(1)"' not in svg
    assert "&quot; onload=&quot;alert(1)&quot;" in svg
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    frame = client.get(frame_url(sample))
    assert frame["Content-Security-Policy"] == "default-src 'none'"


def test_odd_selection_ids_are_ignored(client, manager, dataset):
    client.force_login(manager)
    url = reverse("projects:task-from-selection", args=[dataset.project.slug])
    assert client.get(f"{url}?datasets=%C2%B2&datasets=-1").status_code == 200


def test_an_upload_over_the_limit_is_refused_before_it_is_read(
    client, api_as, manager, project, settings
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.STAGECRAFT_MAX_UPLOAD_BYTES = 1000
    big = SimpleUploadedFile("episode_0.hdf5", b"\0" * 5000)
    client.force_login(manager)
    response = client.post(
        f"/projects/{project.slug}/data/", {"name": "Big", "format": "hdf5", "files": [big]}
    )
    assert response.status_code == 413
    assert "the most this server takes in one request is 1000" in response.content.decode()
    big.seek(0)
    api = api_as(manager).post(
        f"/api/v1/projects/{project.pk}/datasets/",
        {"name": "Big", "format": "hdf5", "files": [big]},
        format="multipart",
    )
    assert api.status_code == 413 and "Split it" in api.json()["detail"]
    assert not Dataset.objects.exists()
