"""Syncing a source bucket through a real RQ worker, and exports copied to a target bucket
(the customer's bucket on the suite's S3 server; Stagecraft's own storage stays local)."""

import json

import pytest

from connectors import services
from connectors.models import ImportedObject
from projects.models import Dataset


def test_a_sync_imports_the_episodes_and_a_resync_only_the_new_ones(
    connect, customer_bucket, sync, django_assert_max_num_queries
):
    customer_bucket.aloha("robots/day1/ep_0.hdf5", seed=0)
    customer_bucket.aloha("robots/day1/ep_1.hdf5", seed=1)
    customer_bucket.put("robots/day1/notes.txt", b"operator: ana")
    customer_bucket.aloha("elsewhere/ep_9.hdf5", seed=9)  # outside the prefix
    connection = connect()

    listing = services.connection_episodes(actor=connection.created_by, connection=connection)
    assert [(e["key"], e["new"]) for e in listing["episodes"]] == [
        ("robots/day1/ep_0.hdf5", True),
        ("robots/day1/ep_1.hdf5", True),
    ]
    assert listing["ignored"] == 1

    connection = sync(connection)
    assert connection.sync_status == "finished", connection.sync_error
    counts = connection.sync_counts
    assert (counts["episodes"], counts["new"], counts["imported"], counts["failed"]) == (2, 2, 2, 0)
    assert counts["ignored"] == 1 and counts["samples"] == 2 and counts["objects"] == 2
    (first,) = Dataset.objects.filter(pk__in=counts["datasets"])
    assert first.status == "finished" and first.format == "hdf5" and first.num_samples == 2
    assert first.source_path == ""  # the working folder is gone; the bucket is the source
    files = sorted(s["file"] for s in first.samples.values_list("source", flat=True))
    assert files == ["day1/ep_0.hdf5", "day1/ep_1.hdf5"]  # the keys under the prefix
    etags = {
        o["Key"]: o["ETag"].strip('"')
        for o in customer_bucket.client.list_objects_v2(Bucket=customer_bucket.name)["Contents"]
    }
    assert dict(ImportedObject.objects.values_list("key", "etag")) == {
        k: etags[k] for k in ("robots/day1/ep_0.hdf5", "robots/day1/ep_1.hdf5")
    }

    customer_bucket.aloha("robots/day2/ep_0.hdf5", seed=2)
    connection = sync(connection)
    counts = connection.sync_counts
    assert (counts["episodes"], counts["new"], counts["unchanged"], counts["imported"]) == (
        3,
        1,
        2,
        1,
    )
    (second,) = Dataset.objects.filter(pk__in=counts["datasets"])
    assert second.pk != first.pk and second.num_samples == 1
    assert [s["file"] for s in second.samples.values_list("source", flat=True)] == [
        "day2/ep_0.hdf5"
    ]

    connection = sync(connection)  # nothing new: no dataset, no download
    assert connection.sync_counts["new"] == 0 and connection.sync_counts["datasets"] == []
    assert connection.sync_counts["objects"] == 0
    assert Dataset.objects.count() == 2

    listing = services.connection_episodes(actor=connection.created_by, connection=connection)
    assert [e["new"] for e in listing["episodes"]] == [False, False, False]


def test_a_changed_object_is_imported_again(connect, customer_bucket, sync):
    customer_bucket.aloha("robots/ep_0.hdf5", seed=0)
    connection = sync(connect())
    assert connection.sync_counts["imported"] == 1
    customer_bucket.aloha("robots/ep_0.hdf5", seed=5)  # new content, new ETag
    connection = sync(connection)
    assert connection.sync_counts["imported"] == 1, connection.sync_error
    assert Dataset.objects.filter(status="finished").count() == 2


def test_picked_episodes_only(connect, customer_bucket, sync):
    for n in range(3):
        customer_bucket.aloha(f"robots/ep_{n}.hdf5", seed=n)
    connection = sync(connect(), keys=["robots/ep_2.hdf5", "robots/gone.hdf5"])
    counts = connection.sync_counts
    assert (counts["new"], counts["imported"], counts["missing"]) == (1, 1, 1)
    assert list(ImportedObject.objects.values_list("key", flat=True)) == ["robots/ep_2.hdf5"]
    connection = sync(connection)  # the rest later
    assert connection.sync_counts["imported"] == 2


def test_a_lerobot_dataset_folder_is_one_dataset(connect, customer_bucket, sync):
    customer_bucket.lerobot("robots/so100-pick")
    customer_bucket.aloha("robots/aloha/ep_0.hdf5")
    connection = sync(connect())
    assert connection.sync_status == "finished", connection.sync_error
    datasets = Dataset.objects.filter(pk__in=connection.sync_counts["datasets"])
    assert sorted((d.format, d.num_samples) for d in datasets) == [("hdf5", 1), ("lerobot", 2)]
    lerobot = datasets.get(format="lerobot")
    assert lerobot.name.endswith(": so100-pick")
    assert ImportedObject.objects.filter(key__startswith="robots/so100-pick/").count() == len(
        customer_bucket.keys("robots/so100-pick/")
    )


def test_a_file_the_importer_refuses_fails_the_sync_with_its_reason(connect, customer_bucket, sync):
    customer_bucket.put("robots/broken.hdf5", b"not an hdf5 file")
    connection = sync(connect())
    assert connection.sync_status == "failed"
    assert connection.sync_counts["failed"] == 1
    assert connection.sync_error.startswith("robots/broken.hdf5: ")
    assert not ImportedObject.objects.exists()  # tried again next time


def test_a_missing_bucket_fails_the_sync_saying_so(connect, sync):
    connection = sync(connect(bucket="no-such-bucket-anywhere"))
    assert connection.sync_status == "failed"
    assert "does not exist" in connection.sync_error


def test_one_sync_at_a_time(connect, manager, django_capture_on_commit_callbacks):
    from core.exceptions import Conflict

    connection = connect()
    services.connection_sync_start(actor=manager, connection=connection)
    with pytest.raises(Conflict):
        services.connection_sync_start(actor=manager, connection=connection)


def test_a_finished_export_is_copied_to_the_target_manifest_last(
    project, manager, connect, customer_bucket, s3_server, run_jobs,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from queues import services as export_services

    target = connect(direction="target", prefix="exports/stagecraft", name="Training bucket")
    connect(direction="source", name="A source")  # not a target: receives nothing
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = export_services.export_start(
            actor=manager, project=project, format="jsonl", options={"zip": False}
        )
    s3_server.record()
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs("exports")  # the export; its end queues the copy
    target.refresh_from_db()
    assert target.sync_status == "queued"
    run_jobs("exports")  # the copy
    export.refresh_from_db()
    assert export.status == "finished", export.error
    target.refresh_from_db()
    assert target.sync_status == "finished", target.sync_error
    top = f"exports/stagecraft/{export.path.rsplit('/', 1)[-1]}"
    keys = customer_bucket.keys(top)
    assert f"{top}/manifest.json" in keys and len(keys) == target.sync_counts["files"] >= 2
    manifest = json.loads(
        customer_bucket.client.get_object(Bucket=customer_bucket.name, Key=f"{top}/manifest.json")[
            "Body"
        ].read()
    )
    assert manifest["version"] == export.version
    bucket = f"/{customer_bucket.name}/"
    puts = [
        path.split(bucket, 1)[1] for method, path in s3_server.recorded()
        if method == "PUT" and bucket in path
    ]  # fmt: skip
    assert sorted(puts) == keys  # each once
    assert puts[-1] == f"{top}/manifest.json"


def test_sync_now_on_a_target_copies_the_newest_export(
    project, manager, connect, customer_bucket, sync, settings, tmp_path
):
    from tests.conftest import make_finished_export

    settings.MEDIA_ROOT = tmp_path / "media"
    target = connect(direction="target", prefix="", name="Training bucket")
    from core.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="no finished export"):
        services.connection_sync_start(actor=manager, connection=target)
    export = make_finished_export(project, manager)
    target = sync(target, queue="exports")
    assert target.sync_status == "finished", target.sync_error
    assert target.sync_counts["export"] == export.version
    top = export.path.rsplit("/", 1)[-1]
    assert f"{top}/manifest.json" in customer_bucket.keys(top)


def test_a_sync_with_stagecraft_on_a_bucket_too(connect, customer_bucket, sync, s3_storage):
    """Stagecraft's own data storage on its bucket, the customer's bucket beside it: the
    episodes are published into Stagecraft's, the customer's is only read."""
    customer_bucket.aloha("robots/ep_0.hdf5")
    before = customer_bucket.keys()
    connection = sync(connect())
    assert connection.sync_status == "finished", connection.sync_error
    (dataset,) = Dataset.objects.filter(pk__in=connection.sync_counts["datasets"])
    assert dataset.files_version  # published as a version in Stagecraft's bucket
    keys = customer_bucket.server.keys(s3_storage.bucket, f"stagecraft/datasets/{dataset.pk}/")
    assert any(k.endswith("/ep_0.hdf5") for k in keys)
    assert customer_bucket.keys() == before


def test_an_export_in_stagecraft_s_bucket_is_copied_to_the_target(
    project, manager, connect, customer_bucket, sync, s3_storage
):
    """Stagecraft's exports in its own bucket: the copy reads them from there (no shared disk)
    into the customer's bucket, the manifest last."""
    from tests.conftest import make_finished_export

    export = make_finished_export(project, manager)
    target = sync(connect(direction="target", prefix="training"), queue="exports")
    assert target.sync_status == "finished", target.sync_error
    top = f"training/{export.path.rsplit('/', 1)[-1]}"
    keys = customer_bucket.keys(top)
    assert f"{top}/manifest.json" in keys and len(keys) == target.sync_counts["files"]
    own = customer_bucket.server.keys(s3_storage.bucket, f"stagecraft/exports/{export.path}/")
    assert sorted(k.split(f"/{export.path}/", 1)[1] for k in own) == sorted(
        k.split(f"{top}/", 1)[1] for k in keys
    )
