import json
import re
import zipfile

from playwright.sync_api import expect


def test_manager_exports_to_lerobot_with_a_progress_bar_and_downloads_it(
    login, live_server, run_jobs, settings, tmp_path
):
    page = login("manager")
    page.goto(f"{live_server.url}/projects/pick-and-place/")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Exports").click()
    page.get_by_label("Format").select_option("lerobot")
    page.get_by_role("button", name="Start export").click()
    expect(page.get_by_role("status")).to_contain_text("Export v1 (lerobot) started.")
    bar = page.get_by_role("progressbar", name="Progress of export v1")
    expect(bar).to_have_attribute("value", "0")

    run_jobs("exports")

    download_link = page.get_by_role("link", name="Download v1")
    expect(download_link).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("v1"))).to_contain_text("6 episodes")
    with page.expect_download() as info:
        download_link.click()
    path = tmp_path / "export.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("v1-lerobot/meta/info.json"))
    assert meta["codebase_version"] == "v3.0" and meta["total_episodes"] == 6
