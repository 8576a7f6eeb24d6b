import re

from playwright.sync_api import expect

from tests.helpers.hdf5 import write_aloha


def test_manager_uploads_episodes_and_watches_the_import(login, live_server, run_jobs, tmp_path):
    files = [
        write_aloha(tmp_path / f"episode_{i}.hdf5", T=15, seed=i) and tmp_path / f"episode_{i}.hdf5"
        for i in range(2)
    ]
    page = login("manager")
    page.goto(f"{live_server.url}/projects/pick-and-place/data/")
    # The demo's datasets are there, with thumbnails that load.
    expect(page.get_by_role("link", name="Tabletop session 1")).to_be_visible()
    thumb = page.get_by_role("img", name="First frame of Tabletop session 1")
    expect(thumb).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", thumb.element_handle()) == 96

    page.get_by_label("Name", exact=True).fill("Uploaded session")
    page.get_by_label("Format").select_option("hdf5")
    page.get_by_label("Files", exact=True).set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Import").click()

    expect(page).to_have_url(re.compile(r"/projects/pick-and-place/data/\d+/$"))
    bar = page.get_by_role("progressbar", name="Import progress of Uploaded session")
    expect(bar).to_have_attribute("value", "0")

    run_jobs("imports")  # a real worker takes the job while the page polls

    expect(bar).to_have_attribute("value", "100")
    samples = page.get_by_role("table", name="Samples")
    expect(samples).to_be_visible()
    expect(samples.get_by_role("row")).to_have_count(3)
    strip = page.get_by_role("img", name="Frames of episode_1 (cam_high)")
    expect(strip).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=strip.element_handle()
    )


def test_a_corrupt_upload_shows_its_error_and_keeps_nothing(login, live_server, run_jobs, tmp_path):
    broken = tmp_path / "episode_0.hdf5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    page = login("manager")
    page.goto(f"{live_server.url}/projects/pick-and-place/data/")
    page.get_by_label("Name", exact=True).fill("Broken")
    page.get_by_label("Files", exact=True).set_input_files(str(broken))
    page.get_by_role("button", name="Import").click()
    run_jobs("imports")
    expect(page.get_by_role("alert")).to_contain_text("episode_0.hdf5: not a readable HDF5 file")
    page.get_by_role("link", name="Back to the data page").click()
    expect(page.get_by_role("row", name=re.compile("Broken"))).to_contain_text("failed")
