"""Keys of the customer's bucket are the customer's: a key that is not a plain relative path
under the prefix (an empty part from ``//``, a ``.`` or ``..``) is never turned into a path
of the worker's machine — such objects are left out of the listing and counted as ignored."""

from connectors.backends import StoredObject
from connectors.episodes import episodes_in


def _objects(*keys: str) -> list[StoredObject]:
    return [StoredObject(key=k, size=1, etag=f"e{n}") for n, k in enumerate(keys)]


def test_keys_with_empty_dot_or_dotdot_parts_are_ignored():
    listing = episodes_in(
        _objects(
            "robots/ep_0.hdf5",
            "robots//tmp/evil.hdf5",
            "robots/./ep_1.hdf5",
            "robots/ds/meta/info.json",
            "robots/ds/data/chunk-000/episode_000000.parquet",
            "robots/ds/../../../../tmp/evil.parquet",
            "robots/ds//tmp/evil.mp4",
            "robots/store.zarr/../../../tmp/evil",
        ),
        "robots",
    )
    assert [(e.key, e.kind) for e in listing.episodes] == [
        ("robots/ds/", "lerobot"),
        ("robots/ep_0.hdf5", "hdf5"),
    ]
    (lerobot, _) = listing.episodes
    assert [o.key for o in lerobot.objects] == [
        "robots/ds/meta/info.json",
        "robots/ds/data/chunk-000/episode_000000.parquet",
    ]
    assert listing.ignored == 5


def test_a_sync_never_writes_outside_its_working_folder(
    connect,
    customer_bucket,
    sync,
    tmp_path,
):
    outside = tmp_path / "outside"
    customer_bucket.aloha("robots/ep_0.hdf5", seed=0)
    customer_bucket.aloha(f"robots/{outside}/evil.hdf5", seed=1)  # robots//tmp/…/evil.hdf5
    customer_bucket.lerobot("robots/ds")
    customer_bucket.put("robots/ds/" + "../" * 30 + f"{str(outside).lstrip('/')}/x.parquet", b"x")
    keys = customer_bucket.keys("robots/")
    assert f"robots/{outside}/evil.hdf5" in keys  # the server keeps the key as it is
    assert any("/../" in k for k in keys)

    connection = sync(connect())

    assert not outside.exists()
    assert connection.sync_status == "finished", connection.sync_error
    assert connection.sync_counts["imported"] == 2  # ep_0.hdf5 and the LeRobot folder
    assert connection.sync_counts["ignored"] == 2
