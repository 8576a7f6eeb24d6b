"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium), headless."""

import pytest
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def demo(transactional_db, demo_seeder):
    """The database holds exactly what ``manage.py seed_demo`` makes in an empty one (and its
    media files): seeded for real once per session, then restored from a copy
    (tests/conftest.py, ``DemoSeeder``)."""
    demo_seeder.seed()


@pytest.fixture
def login(page, live_server, demo, browser):
    """``login("annotator")`` logs the test's page in; ``login("reviewer", new_context=True)``
    opens a second, separate browser session (closed after the test)."""
    contexts = []
    in_flight: set = set()  # requests the browser sent and the server has not answered yet

    def sent(request) -> None:
        in_flight.add(request)

    def answered(request) -> None:
        in_flight.discard(request)

    def track(context) -> None:
        context.on("request", sent)
        context.on("requestfinished", answered)
        context.on("requestfailed", answered)

    track(page.context)

    def as_user(username: str, *, new_context: bool = False):
        target = page
        if new_context:
            contexts.append(browser.new_context())
            track(contexts[-1])
            target = contexts[-1].new_page()
        target.goto(f"{live_server.url}/accounts/login/")
        target.get_by_label("Username").fill(username)
        target.get_by_label("Password").fill("demo")
        target.get_by_role("button", name="Log in").click()
        target.wait_for_url(f"{live_server.url}/")
        return target

    yield as_user
    # Before the database is emptied, let the server answer everything the pages sent (a
    # workspace pings it when it opens) and leave the pages: a request still running during
    # the flush can deadlock with it.
    for _ in range(100):
        if not in_flight:
            break
        page.wait_for_timeout(50)
    for open_page in [page, *(p for c in contexts for p in c.pages)]:
        try:
            open_page.goto("about:blank")
        except PlaywrightError:
            continue  # already closed
    for context in contexts:
        context.close()
