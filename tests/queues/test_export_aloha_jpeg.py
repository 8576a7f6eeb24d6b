"""The HDF5 export's ALOHA compressed layout (``compress: "jpeg"``): each camera a (T, padded)
uint8 array of zero-padded JPEG bytes with ``/compress_len`` (n_cams, T) and the root
attribute ``compress``, as mobile ALOHA's record_episodes.py writes; ACT's loader decodes a
row with ``cv2.imdecode(row, 1)`` (OpenCV is not installed here: Pillow decodes the same padded
row, and the channel order is OpenCV's — the JPEG holds red and blue swapped). Lossless stays
the default."""

import io

import h5py
import numpy as np
import pytest
from PIL import Image

from .test_export_episodes import export, finished_tasks, import_folder

pytestmark = pytest.mark.django_db

T, H, W = 40, 120, 160
CAMERAS = ("cam_high", "cam_left_wrist")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def camera_frames(seed: int) -> np.ndarray:
    """A moving colour gradient with sensor-like noise (a real camera's frames are never
    flat: gzip gains little on them, JPEG a lot)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None, None]
    y = np.arange(H)[None, :, None]
    x = np.arange(W)[None, None, :]
    channels = np.broadcast_arrays((x + 2 * t) % 256, (y + t) % 256, (x + y + seed * 40 + t) % 256)
    base = np.stack(channels, axis=-1)
    noisy = base + rng.normal(0, 4, size=base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.fixture
def episode(project, manager, tmp_path):
    folder = tmp_path / "aloha"
    folder.mkdir()
    frames = {cam: camera_frames(c) for c, cam in enumerate(CAMERAS)}
    with h5py.File(folder / "episode_0.hdf5", "w") as f:
        f.attrs["sim"] = False
        f["observations/qpos"] = np.zeros((T, 14), np.float32)
        f["action"] = np.ones((T, 14), np.float32)
        for cam, values in frames.items():
            f.create_dataset(f"observations/images/{cam}", data=values, chunks=(1, H, W, 3))
    dataset = import_folder(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    return frames


def act_decode(row: np.ndarray) -> np.ndarray:
    """``cv2.imdecode(padded_row, 1)``: the decoder stops at the JPEG's end (the zero padding
    is ignored) and answers BGR — which, the recorder having encoded RGB as BGR, is RGB."""
    return np.asarray(Image.open(io.BytesIO(row.tobytes())).convert("RGB"))[..., ::-1]


def test_jpeg_layout_decodes_as_act_reads_it_and_is_far_smaller(project, manager, episode):
    lossless, raw_out, _ = export(project, manager, "hdf5")
    jpeg, jpeg_out, _ = export(project, manager, "hdf5", compress="jpeg")
    with h5py.File(raw_out / "episode_0.hdf5") as f:
        assert "compress_len" not in f and not f.attrs.get("compress", False)
        for cam, frames in episode.items():
            assert np.array_equal(f[f"observations/images/{cam}"][...], frames)  # lossless
    with h5py.File(jpeg_out / "episode_0.hdf5") as f:
        assert bool(f.attrs["compress"]) is True and bool(f.attrs["sim"]) is False
        lengths = f["compress_len"][...]
        assert lengths.shape == (len(CAMERAS), T)
        widths = {f[f"observations/images/{cam}"].shape for cam in CAMERAS}
        assert widths == {(T, int(lengths.max()))}  # padded to the longest frame, as recorded
        for c, cam in enumerate(CAMERAS):
            rows = f[f"observations/images/{cam}"]
            for t in range(T):
                row = rows[t]
                assert not row[int(lengths[c, t]) :].any()  # zero padding after the JPEG
                decoded = act_decode(row)
                error = np.abs(decoded.astype(int) - episode[cam][t].astype(int))
                assert decoded.shape == (H, W, 3)
                # JPEG at quality 50 smooths the sensor noise (σ = 4) away, nothing more;
                # read in the other channel order the frame is far off.
                assert error.mean() < 6, (cam, t, error.mean())
                swapped = np.abs(decoded[..., ::-1].astype(int) - episode[cam][t].astype(int))
                assert swapped.mean() > 20
        assert np.array_equal(f["action"][...], np.ones((T, 14), np.float32))
    raw_size, jpeg_size = lossless.size_bytes, jpeg.size_bytes
    assert jpeg_size * 4 < raw_size, (jpeg_size, raw_size)


def test_our_aloha_importer_reads_the_jpeg_layout_back(project, manager, episode, tmp_path):
    import shutil

    _, out, _ = export(project, manager, "hdf5", compress="jpeg")
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(out / "episode_0.hdf5", again / "episode_0.hdf5")
    dataset = import_folder(project, manager, again)
    sample = dataset.samples.get()
    assert {c["encoding"] for c in sample.cameras} == {"jpeg"}
    from projects.dataset_services import dataset_dir
    from projects.formats import get_format

    frame = get_format("hdf5").read_frame(dataset_dir(dataset), sample, "cam_high", T - 1)
    assert np.abs(frame.astype(int) - episode["cam_high"][T - 1].astype(int)).mean() < 6
    # Exported again in the JPEG layout, a JPEG-sourced episode keeps its source's bytes (no
    # second loss): every row and length the same as in the file imported.
    from tasks.models import Task

    Task.objects.all().delete()
    finished_tasks(project, manager, dataset, 1, start=5)
    _, second, _ = export(project, manager, "hdf5", compress="jpeg")
    with h5py.File(out / "episode_0.hdf5") as first, h5py.File(second / "episode_0.hdf5") as f:
        assert np.array_equal(f["compress_len"][...], first["compress_len"][...])
        for cam in CAMERAS:
            assert np.array_equal(
                f[f"observations/images/{cam}"][...], first[f"observations/images/{cam}"][...]
            )


def test_compress_is_refused_for_other_formats_and_unknown_values(project, manager, api_as):
    client = api_as(manager)
    for body in (
        {"format": "lerobot", "compress": "jpeg"},
        {"format": "hdf5", "compress": "png"},
    ):
        response = client.post("/api/v1/exports/", {"project": project.pk, **body}, format="json")
        assert response.status_code == 400, response.content
        assert "compress" in response.content.decode()
