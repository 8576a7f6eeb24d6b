import django_rq
from playwright.sync_api import expect

from queues.models import Export
from tests.queues.helpers import fail


def test_admin_pauses_exports_sees_an_export_wait_resumes_and_retries(login, live_server, run_jobs):
    page = login("admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queues").click()
    queues = page.get_by_role("table", name="Queues")
    expect(queues.get_by_role("row", name="exports")).to_contain_text("running")
    page.get_by_role("button", name="Pause exports").click()
    expect(page.get_by_role("status")).to_contain_text("Paused exports")
    expect(queues.get_by_role("row", name="exports")).to_contain_text("paused")

    page.goto(f"{live_server.url}/projects/pick-and-place/exports/")
    page.get_by_label("Format").select_option("jsonl")
    page.get_by_role("button", name="Start export").click()
    run_jobs()  # a worker runs, but the exports queue is paused
    assert Export.objects.get().status == "queued"

    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Resume exports").click()
    expect(queues.get_by_role("row", name="exports")).to_contain_text("running")
    run_jobs()
    assert Export.objects.get().status == "finished"

    django_rq.get_queue("default", commit_mode="auto").enqueue(fail)
    run_jobs("default")
    page.reload()
    expect(page.locator("details.failed-job")).to_contain_text("fail")
    page.get_by_role("button", name="Retry failed jobs of default").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Retried 1 failed job on default. 0 failed jobs remain."
    )
    expect(page.get_by_role("region", name="Recent actions")).to_contain_text(
        "retried failed default — 1 job"
    )
