import re

from playwright.sync_api import expect

from projects.models import Dataset
from tasks.models import Task


def test_filter_by_tab_and_back_button(login, live_server):
    page = login("manager")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    tasks = page.get_by_role("table", name="Tasks")
    expect(tasks.get_by_role("row")).to_have_count(9)  # header + 8 demo tasks
    page.get_by_role("tab", name=re.compile("^Pending start")).click()
    expect(page).to_have_url(re.compile(r"status=pending_start"))
    expect(tasks.get_by_role("row")).to_have_count(4)
    expect(page.get_by_role("tab", name=re.compile("^Pending start"))).to_have_attribute(
        "aria-selected", "true"
    )
    page.get_by_label("Search").fill("episodes 2")
    expect(tasks.get_by_role("row")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"q=episodes"))
    page.go_back()
    page.go_back()
    expect(tasks.get_by_role("row")).to_have_count(9)


def test_select_all_matching_reassign_and_delete_with_the_dialog(login, live_server):
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/?status=pending_start&sort=name")
    bar = page.get_by_role("region", name="Batch actions")
    expect(bar).to_be_hidden()
    page.get_by_role("checkbox", name="Select Morning episodes 1").check()
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("1 task selected")
    page.get_by_role("checkbox", name="Select all tasks on this page").check()
    expect(bar).to_contain_text("3 tasks selected")

    # The member picker: the project's annotators, by name.
    bar.locator("summary", has_text="Annotators").click()
    picker = bar.get_by_role("group", name="Annotators")
    expect(picker).to_contain_text("Ana Annotator")
    expect(picker).not_to_contain_text("Ravi")  # a reviewer: not offered as an annotator
    picker.get_by_label("Noah Annotator").first.check()
    bar.get_by_role("button", name="Reassign").click()
    expect(page.get_by_role("status")).to_contain_text("Reassigned 3 tasks.")
    names = set(
        Task.objects.filter(status="pending_start").values_list("annotators__username", flat=True)
    )
    assert names == {"annotator2"}

    datasets_before = Dataset.objects.count()
    page.get_by_role("checkbox", name="Select Morning episodes 1").check()
    page.get_by_role("checkbox", name="Select Morning episodes 2").check()
    bar.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete 2 tasks?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Task.objects.count() == 8
    bar.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete 2 tasks").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted 2 tasks. Their datasets are kept.")
    expect(page.get_by_role("table", name="Tasks").get_by_role("row")).to_have_count(2)
    assert Task.objects.count() == 6
    assert Dataset.objects.count() == datasets_before


def test_select_all_matching_goes_beyond_the_page(login, live_server):
    from tasks import services

    manager = Task.objects.first().created_by
    project = Task.objects.first().project
    services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"bulk {i}", "batch": "many"} for i in range(60)],
    )
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/?batch=many")
    page.get_by_role("checkbox", name="Select all tasks on this page").check()
    bar = page.get_by_role("region", name="Batch actions")
    expect(bar).to_contain_text("50 tasks selected")
    bar.get_by_role("button", name="Select all 60 matching this filter").click()
    expect(bar).to_contain_text("60 tasks selected: all matching this filter")
    bar.get_by_label("Priority").select_option("urgent")
    bar.get_by_role("button", name="Set priority").click()
    expect(page.get_by_role("status")).to_contain_text("Updated 60 tasks.")
    assert Task.objects.filter(batch="many", priority="urgent").count() == 60


def test_create_a_task_from_the_data_page(login, live_server):
    page = login("manager")
    page.goto(f"{live_server.url}/projects/pick-and-place/data/")
    page.get_by_role("checkbox", name="Select Tabletop session 2").check()
    page.get_by_role("button", name="Create task from selection").click()
    expect(page.get_by_role("checkbox", name="Tabletop session 2")).to_be_checked()
    page.get_by_label("Name", exact=True).fill("Night layouts")
    page.get_by_role("checkbox", name="annotator2").check()
    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Night layouts")
    expect(page.get_by_role("list", name="Stage strip")).to_contain_text("segments")


def test_an_annotator_cannot_open_another_annotators_task(login, live_server):
    task = Task.objects.get(name="Morning episodes 1")
    task.annotators.set(
        Task.objects.get(name="Morning episodes 2").annotators.filter(username="annotator2")
    )
    page = login("annotator")
    response = page.goto(f"{live_server.url}/tasks/{task.pk}/")
    assert response.status == 404


def test_task_page_tabs_have_their_own_urls(login, live_server):
    task = Task.objects.get(name="Night shift review")
    page = login("reviewer")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    expect(page.get_by_role("navigation", name="Breadcrumb")).to_contain_text("Tasks")
    strip = page.get_by_role("list", name="Stage strip")
    expect(strip).to_contain_text("tool_detail")
    expect(strip).to_contain_text("Skipped")
    expect(page.get_by_role("tab", name="Annotation data")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.get_by_role("table", name="Datasets of the task")).to_contain_text("Sorting blocks")
    for name, path, content in (
        ("Batch annotation", "batch-annotation", "samples annotated"),
        ("Invalid annotations", "invalid", "No annotation is marked invalid."),
        ("Annotation statistics", "statistics", "grasp the block"),
    ):
        page.get_by_role("tab", name=name).click()
        expect(page).to_have_url(f"{live_server.url}/tasks/{task.pk}/{path}/")
        expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")
        expect(page.get_by_role("tabpanel")).to_contain_text(content)
    page.go_back()
    expect(page.get_by_role("tabpanel")).to_contain_text("No annotation is marked invalid.")
    page.reload()
    expect(page.get_by_role("tab", name="Invalid annotations")).to_have_attribute(
        "aria-selected", "true"
    )
    # A reviewer sees no manager actions.
    expect(page.get_by_role("button", name="Delete task")).to_have_count(0)


def test_manager_deletes_a_task_from_its_page_and_datasets_remain(login, live_server):
    task = Task.objects.get(name="Reach and grasp")
    datasets = [d.pk for d in task.datasets.all()]
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete task").click()
    expect(page.get_by_role("status")).to_contain_text("Task “Reach and grasp” deleted.")
    assert not Task.objects.filter(pk=task.pk).exists()
    assert Dataset.objects.filter(pk__in=datasets).count() == len(datasets)


def test_task_page_refreshes_its_figures_when_the_tab_becomes_visible(login, live_server):
    from tasks import services

    task = Task.objects.get(name="Reach and grasp")
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    stats = page.locator("#task-stats")
    expect(stats).to_contain_text("Annotations")
    before = stats.inner_text()
    run = task.runs.get(stage_key="segments")
    services.annotation_create(
        actor=run.assignee,
        task=task,
        stage="segments",
        label="gripper_open",
        data={"start": 1, "end": 2},
        attributes={"description": "x"},
    )
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(stats).not_to_have_text(before)
    assert page.url.endswith(f"/tasks/{task.pk}/")  # no reload, only the figures


def test_filters_keep_their_values_when_going_back(login, live_server):
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/")
    tasks = page.get_by_role("table", name="Tasks")
    filters = page.get_by_role("search", name="Filter tasks")
    filters.get_by_label("Batch").fill("day")
    filters.get_by_label("Batch").press("Enter")
    expect(page).to_have_url(re.compile(r"batch=day"))
    filters.get_by_label("Priority").select_option("normal")
    expect(page).to_have_url(re.compile(r"priority=normal.*batch=day"))
    expect(tasks.get_by_role("row")).to_have_count(4)  # header + the 3 morning tasks
    tasks.get_by_role("link", name="Morning episodes 1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Morning episodes 1")
    page.go_back()
    expect(page).to_have_url(re.compile(r"priority=normal.*batch=day"))
    expect(tasks.get_by_role("row")).to_have_count(4)
    expect(filters.get_by_label("Batch")).to_have_value("day")
    expect(filters.get_by_label("Priority")).to_have_value("normal")
    # One more step back: the filters follow the URL there too.
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"priority=normal"))
    expect(filters.get_by_label("Priority")).to_have_value("")
    expect(filters.get_by_label("Batch")).to_have_value("day")


def test_a_filter_change_keeps_the_chosen_status_tab(login, live_server):
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/")
    page.get_by_role("tab", name=re.compile("^Pending start")).click()
    expect(page).to_have_url(re.compile(r"status=pending_start"))
    filters = page.get_by_role("search", name="Filter tasks")
    filters.get_by_label("Priority").select_option("normal")
    expect(page).to_have_url(re.compile(r"priority=normal"))
    expect(page).to_have_url(re.compile(r"status=pending_start"))
    expect(page.get_by_role("tab", name=re.compile("^Pending start"))).to_have_attribute(
        "aria-selected", "true"
    )
