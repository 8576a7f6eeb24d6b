import re

from playwright.sync_api import expect

from tasks.models import Annotation, StageRun


def draw_box(page, x0, y0, x1, y1, camera=None):
    """Drag on the current camera (``camera``: a name in the strip, shown first)."""
    if camera is not None:
        thumb = page.get_by_role("group", name="Cameras").get_by_role("button", name=camera)
        thumb.click()
        expect(thumb).to_have_attribute("aria-pressed", "true")
    area = page.locator("svg.overlay")
    expect(area).to_be_visible()
    ready = "[...document.querySelectorAll('svg.overlay')].every((s) => s.viewBox.baseVal.width)"
    page.wait_for_function(f"() => {ready}")
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    page.mouse.move(box["x"] + x1, box["y"] + y1, steps=5)
    page.mouse.up()


def in_stage(page) -> list[bool]:
    """Which samples the workspace's stage annotates (its ``sampling`` draw)."""
    data = "JSON.parse(document.getElementById('workspace-data').textContent)"
    return page.evaluate(f"{data}.samples.map((s) => s.in_stage)")


def test_annotator_labels_in_the_workspace_and_submits(login, live_server):
    page = login("annotator")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My work").click()
    page.get_by_role("button", name="Start next task").click()
    expect(page).to_have_url(re.compile(r"/workspace/\d+/objects/$"))
    task_id = int(re.search(r"/workspace/(\d+)/", page.url).group(1))
    run = StageRun.objects.get(task_id=task_id, stage_key="objects")
    assert (run.status, run.assignee.username) == ("in_progress", "annotator")

    # Keyboard: the right arrow steps a frame, the left arrow steps back.
    counter = page.locator("[data-counter]")
    expect(counter).to_have_text(re.compile(r"^0 / [1-9]"))  # the viewer is ready
    page.keyboard.press("ArrowRight")
    expect(counter).to_have_text(re.compile(r"^1 / "))
    page.keyboard.press("ArrowLeft")

    page.get_by_label("category *").select_option("block")
    draw_box(page, 40, 40, 120, 110)
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text("Saved object.")
    expect(page.get_by_role("list", name="Annotations of this sample")).to_contain_text("object")
    saved = Annotation.objects.get(task=run.task, stage_key="objects")
    assert saved.attributes == {"category": "block", "occluded": False}
    assert saved.data["frame"] == 0 and saved.data["w"] > 10

    # The stage boxes a drawn half of the samples (sampling: 50): those still without a box
    # make the stage's check refuse the submit, and it says so beside each of them.
    # The workspace opened on the first drawn sample, where the box above went.
    drawn = in_stage(page)
    assert sum(drawn) == 2  # of 3
    missing = [i for i, d in enumerate(drawn) if d and i != drawn.index(True)]
    page.get_by_role("button", name="Submit stage").click()
    expect(page.get_by_role("alert", name="Problems")).to_contain_text(
        f"{len(missing)} sample(s) have no annotation yet"
    )
    samples = page.get_by_role("complementary", name="Samples")
    for i in range(3):
        note = expect(samples.locator("li").nth(i))
        (note.to_contain_text if i in missing else note.not_to_contain_text)("No annotation yet.")

    for i in missing:
        samples.locator("li button.sample").nth(i).click()
        draw_box(page, 30, 30, 90, 90)
        expect(page.get_by_role("list", name="Annotations of this sample")).to_contain_text(
            "object"
        )
    expect(page.get_by_role("progressbar", name="Annotated samples")).to_have_attribute(
        "value", "2"
    )
    page.get_by_role("button", name="Submit stage").click()
    expect(page).to_have_url(re.compile(r"/workspace/\?done=submitted$"))
    run.refresh_from_db()
    assert run.status == "completed"


def test_a_segment_with_a_description(login, live_server):
    page = login("annotator")
    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    page.get_by_label("description *").fill("reach for the block")
    page.locator("[data-counter]").click()  # leave the text field: shortcuts work again
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.get_by_role("button", name="Start here").click()
    page.locator("[data-scrubber]").fill("30")
    page.get_by_role("button", name="End here").click()
    expect(page.get_by_label("Segment end")).to_have_value("30")
    page.get_by_role("button", name="Add segment").click()
    expect(page.get_by_role("list", name="Annotations of this sample")).to_contain_text(
        "frames 5–30"
    )
    segment = Annotation.objects.get(task=run.task_id, stage_key="segments")
    assert segment.data == {"start": 5, "end": 30}
    assert segment.attributes == {"description": "reach for the block"}


def test_reviewer_rejects_with_a_pinned_comment_and_the_annotator_sees_it(
    login, live_server, browser
):
    from tasks.models import Comment, Task

    task = Task.objects.get(name="Night shift review")
    page = login("reviewer")
    page.goto(f"{live_server.url}/workspace/{task.pk}/full_review/")
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    annotations = page.get_by_role("list", name="Annotations of this sample")
    expect(annotations).to_contain_text("gripper_open")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^3 / "))
    annotations.get_by_role("button", name=re.compile(r"^Comment on gripper_open")).first.click()
    expect(page.locator("[data-pinned]")).to_contain_text("pinned to gripper_open")
    page.get_by_label("Comment", exact=True).fill("The grasp starts earlier.")
    page.get_by_role("button", name="Reject").click()
    expect(page).to_have_url(f"{live_server.url}/workspace/?done=rejected")
    expect(page.get_by_role("status").first).to_contain_text("Sent back for rework")
    run = StageRun.objects.get(task=task, stage_key="segments")
    assert run.status == "in_progress" and run.attempt == 2
    assert run.feedback == "The grasp starts earlier."
    problem = Comment.objects.get(task=task, body="The grasp starts earlier.")
    assert (problem.kind, problem.frame, problem.sample.name) == ("problem", 3, "episode_0")
    assert problem.annotation.label == "gripper_open"

    annotator = login("annotator", new_context=True)
    annotator.goto(f"{live_server.url}/workspace/{task.pk}/segments/")
    expect(annotator.get_by_role("note").first).to_contain_text("The grasp starts earlier.")
    name = f"Comments on gripper_open #{problem.annotation_id}"
    pinned = annotator.get_by_role("list", name=name)
    expect(pinned).to_contain_text("The grasp starts earlier.")
    annotator.get_by_role("list", name="Comments", exact=True).get_by_role(
        "button", name=re.compile(r"^Go to episode_0, frame 3")
    ).click()
    expect(annotator.locator("[data-counter]")).to_have_text(re.compile(r"^3 / "))
    annotator.get_by_role("list", name="Comments", exact=True).get_by_role(
        "button", name=re.compile(r"^Reply to the problem “The grasp")
    ).click()
    expect(annotator.locator("[data-pinned]")).to_contain_text("Replying to reviewer's problem")
    annotator.get_by_label("Add a comment").fill("Moved the start to frame 12.")
    annotator.get_by_role("button", name="Add", exact=True).click()
    expect(annotator.get_by_role("list", name="Comments", exact=True)).to_contain_text(
        "Solution · annotator"
    )
    answer = Comment.objects.get(task=task, kind="solution")
    assert (answer.parent, answer.body, answer.annotation) == (
        problem,
        "Moved the start to frame 12.",
        problem.annotation,
    )


def test_a_stale_edit_shows_a_conflict_and_overwrites_nothing(login, live_server, browser):
    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    from tasks import services

    annotation = services.annotation_create(
        actor=run.assignee,
        task=run.task,
        stage="segments",
        label="gripper_open",
        data={"start": 1, "end": 4},
        attributes={"description": "first"},
    )
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    expect(page.get_by_role("list", name="Annotations of this sample")).to_contain_text("first")
    # Meanwhile, in another session, the same annotation changes.
    services.annotation_update(
        actor=run.assignee, annotation=annotation, version=1, attributes={"description": "second"}
    )
    page.get_by_label("Reason when marking invalid").fill("blurred")
    page.get_by_role("button", name=re.compile("^Mark gripper_open")).click()
    expect(page.get_by_role("alert", name="Problems")).to_contain_text(
        "Conflict: someone changed this annotation"
    )
    annotation.refresh_from_db()
    assert (annotation.invalid, annotation.attributes["description"]) == (False, "second")


def test_batch_apply_a_classification_to_three_samples(login, live_server):
    from blueprints import services as blueprints
    from projects.models import Dataset, Project
    from tasks import services
    from tasks.models import Annotation

    project = Project.objects.get(slug="pick-and-place")
    manager = project.created_by
    default = project.blueprints.get(name="default")
    blueprints.blueprint_activate(actor=manager, blueprint=default)
    dataset = Dataset.objects.get(name="Sorting blocks")
    task = services.task_create(
        actor=manager,
        project=project,
        name="Outcomes",
        datasets=[dataset.pk],
        annotators=["annotator"],
    )
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/")
    page.get_by_role("row", name=re.compile("Outcomes")).get_by_role("button", name="Open").click()
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    page.get_by_label("Class").select_option("outcome")
    for name in ("episode_0", "episode_1", "episode_2"):
        page.get_by_role("checkbox", name=f"Include {name} in batch annotation").check()
    apply = page.get_by_role("button", name="Apply to 3 selected samples").last
    page.get_by_label("Value").select_option("success")
    apply.click()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text(
        "Saved outcome on 3 samples."
    )
    assert Annotation.objects.filter(task=task, label="outcome", data__value="success").count() == 3
    expect(page.get_by_role("progressbar", name="Annotated samples")).to_have_attribute(
        "value", "3"
    )
    page.get_by_role("button", name="Undo").click()  # one step takes back all three
    expect(page.get_by_role("progressbar", name="Annotated samples")).to_have_attribute(
        "value", "0"
    )
    assert not Annotation.objects.filter(task=task, label="outcome").exists()


def test_two_annotators_pressing_start_next_get_different_runs(login, live_server, browser):
    pages = []
    for name in ("annotator", "annotator2"):
        p = login(name, new_context=True)
        p.goto(f"{live_server.url}/workspace/")
        pages.append(p)
    for p in pages:
        p.get_by_role("button", name="Start next task").click()
    urls = {p.url for p in pages}
    assert len(urls) == 2
    for p in pages:
        assert "/workspace/" in p.url


def test_undo_and_redo_with_the_keyboard(login, live_server):
    from tasks.models import Annotation

    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    page.get_by_label("description *").fill("lift")
    page.get_by_label("Segment start").fill("2")
    page.get_by_label("Segment end").fill("9")
    page.get_by_role("button", name="Add segment").click()
    saved = page.get_by_role("status", name="Saved changes")
    expect(saved).to_contain_text("Saved gripper_open.")
    assert Annotation.objects.filter(task=run.task_id).count() == 1
    page.locator("[data-counter]").click()
    page.keyboard.press("Control+z")
    expect(saved).to_contain_text("Undone: added gripper_open.")
    assert Annotation.objects.filter(task=run.task_id).count() == 0
    page.keyboard.press("Control+Shift+z")
    expect(saved).to_contain_text("Redone: added gripper_open.")
    assert Annotation.objects.filter(task=run.task_id, data__start=2).count() == 1
    # Delete it with its button, then undo twice: the re-created segment (a new id) is the
    # one the older step takes back.
    page.get_by_role("button", name=re.compile(r"^Delete gripper_open")).click()
    expect(saved).to_contain_text("Deleted gripper_open.")
    page.keyboard.press("Control+z")
    expect(saved).to_contain_text("Undone: deleted gripper_open.")
    assert Annotation.objects.filter(task=run.task_id).count() == 1
    page.keyboard.press("Control+z")
    expect(saved).to_contain_text("Undone: added gripper_open.")
    assert Annotation.objects.filter(task=run.task_id).count() == 0
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_contain_text("undo / redo")


def test_dragging_a_segment_edge_on_the_timeline(login, live_server):
    from tasks import services
    from tasks.models import Annotation

    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    first = run.task.datasets.first().samples.order_by("index").first()
    segment = services.annotation_create(
        actor=run.assignee,
        task=run.task,
        stage="segments",
        label="gripper_open",
        sample=first.pk,
        data={"start": 10, "end": 20},
        attributes={"description": "grasp"},
    )
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    handle = page.locator(f'svg.timeline rect[data-id="{segment.pk}"][data-edge="end"]')
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    expect(handle).to_have_count(1)
    handle.scroll_into_view_if_needed()
    timeline = page.locator("svg.timeline").bounding_box()
    start = handle.bounding_box()
    target_x = timeline["x"] + timeline["width"] * 60 / (first.num_frames - 1)
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(target_x, start["y"] + 5, steps=8)
    page.mouse.up()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text(
        "Moved gripper_open to frames 10–"
    )
    segment.refresh_from_db()
    assert segment.data["start"] == 10 and 57 <= segment.data["end"] <= 63 and segment.version == 2
    assert Annotation.objects.filter(task=run.task_id).count() == 1
    page.keyboard.press("Control+z")  # the move is undone through the API, version-checked
    expect(page.get_by_role("status", name="Saved changes")).to_have_text(
        "Undone: changed gripper_open."
    )
    segment.refresh_from_db()
    assert (segment.data, segment.version) == ({"start": 10, "end": 20}, 3)


def test_edit_an_annotations_attributes_in_place(login, live_server):
    from tasks import services

    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    segment = services.annotation_create(
        actor=run.assignee,
        task=run.task,
        stage="segments",
        label="gripper_open",
        data={"start": 1, "end": 5},
        attributes={"description": "old words"},
    )
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    page.get_by_role("button", name=re.compile("^Edit attributes of gripper_open")).click()
    expect(page.get_by_label("description *")).to_have_value("old words")
    page.get_by_label("description *").fill("new words")
    page.get_by_role("button", name=f"Save gripper_open #{segment.pk}").click()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text(
        "Saved changes to gripper_open."
    )
    segment.refresh_from_db()
    assert (segment.attributes, segment.version) == ({"description": "new words"}, 2)


def test_done_means_start_next_label_submit_and_the_reviewer_sees_it(login, live_server, browser):
    """The issue's journey on the demo: Start next task, boxes and a segment using only the
    workspace, submit both stages, and the reviewer finds the task in review."""
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/")
    page.get_by_role("button", name="Start next task").click()
    expect(page).to_have_url(re.compile(r"/workspace/\d+/objects/$"))
    task_id = int(re.search(r"/workspace/(\d+)/", page.url).group(1))
    guidance = page.get_by_role("region", name="Instructions")
    expect(guidance).to_contain_text("Box every object on the table")
    guidance.get_by_text("Object boxes").click()  # the project's guideline, opened in place
    expect(guidance).to_contain_text("tight to its visible edges")

    samples = page.get_by_role("progressbar", name="Annotated samples")
    entries = page.get_by_role("complementary", name="Samples").locator("li button.sample")
    drawn = [i for i, d in enumerate(in_stage(page)) if d]  # the stage's sample: 50 %
    assert int(samples.get_attribute("max")) == len(drawn)
    for n, i in enumerate(drawn):
        entries.nth(i).click()
        page.get_by_label("category *").select_option("block")
        draw_box(page, 30, 30, 100, 90)
        expect(samples).to_have_attribute("value", str(n + 1))
    page.get_by_role("button", name="Submit stage").click()
    expect(page).to_have_url(f"{live_server.url}/workspace/?done=submitted")

    row = page.get_by_role("row").filter(has_text="segments").filter(has_text="Reach and grasp")
    row.get_by_role("link", name="Continue").click()
    expect(page).to_have_url(f"{live_server.url}/workspace/{task_id}/segments/")
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    page.get_by_label("description *").fill("grasp the block, place it left")
    page.get_by_label("Segment start").fill("4")
    page.get_by_label("Segment end").fill("25")
    page.get_by_role("button", name="Add segment").click()
    expect(page.get_by_role("list", name="Annotations of this sample")).to_contain_text(
        "frames 4–25"
    )
    page.locator("[data-counter]").click()
    page.keyboard.press("Control+Enter")  # the submit shortcut
    expect(page).to_have_url(f"{live_server.url}/workspace/?done=submitted")
    review = StageRun.objects.get(task_id=task_id, stage_key="full_review")
    assert review.status == "ready"

    reviewer = login("reviewer", new_context=True)
    reviewer.goto(f"{live_server.url}/workspace/")
    row = reviewer.get_by_role("row").filter(has_text="Reach and grasp")
    expect(row).to_contain_text("full_review")
    row.get_by_role("button", name="Open").click()
    expect(reviewer).to_have_url(f"{live_server.url}/workspace/{task_id}/full_review/")
    listed = reviewer.get_by_role("list", name="Annotations of this sample")
    expect(listed).to_contain_text("gripper_open")
    # The objects were boxed on the drawn samples only; the first of them shows its box.
    reviewer.get_by_role("complementary", name="Samples").locator("li button.sample").nth(
        drawn[0]
    ).click()
    expect(listed).to_contain_text("object")
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer).to_have_url(f"{live_server.url}/workspace/?done=approved")
    review.refresh_from_db()
    assert review.status == "completed" and review.task.status == "review_passed"


def test_mark_a_sample_invalid_class_hotkeys_and_delete_key(login, live_server):
    from tasks.models import InvalidSample

    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/")
    page.get_by_role("button", name="Start next task").click()
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    task_id = int(re.search(r"/workspace/(\d+)/", page.url).group(1))

    page.get_by_role("button", name="Mark this sample invalid").click()
    expect(page.get_by_role("alert", name="Problems")).to_contain_text("Give a reason")
    page.get_by_label("Reason when marking invalid").fill("Top camera covered")
    page.get_by_role("button", name="Mark this sample invalid").click()
    expect(page.locator("[data-sample-invalid]")).to_contain_text("Top camera covered")
    expect(page.get_by_role("list").get_by_role("button", name=re.compile("^⚠"))).to_have_count(1)
    # The workspace opened on the first sample of the stage's draw (sampling: 50).
    drawn = [i for i, d in enumerate(in_stage(page)) if d]
    flag = InvalidSample.objects.get(task_id=task_id)
    assert (flag.reason, flag.sample.name) == ("Top camera covered", f"episode_{drawn[0]}")

    for _ in range(drawn[1] - drawn[0]):  # the next drawn sample is fine; label it, then delete
        page.keyboard.press("PageDown")
    expect(page.locator("[data-sample-invalid]")).to_be_hidden()
    page.locator("[data-counter]").click()
    page.keyboard.press("1")  # class hotkey: the first (only) class of the stage
    expect(page.get_by_role("status", name="Saved changes")).to_have_text("Class: object.")
    draw_box(page, 20, 20, 80, 80)  # the required category is still empty: incomplete
    expect(page.get_by_role("status", name="Saved changes")).to_have_text(
        "Saved object, incomplete: set category (required), then Save."
    )
    page.get_by_label("category *").select_option("block")
    page.get_by_role("button", name=re.compile(r"^Save object #")).click()
    expect(page.get_by_role("status", name="Saved changes")).to_have_text(
        "Saved changes to object."
    )
    listed = page.get_by_role("list", name="Annotations of this sample")
    expect(listed).to_contain_text("object")
    draw_box(page, 10, 10, 80, 80, camera="Show cam_right_wrist")  # the wrist camera too
    boxes = listed.get_by_role("button", name=re.compile(r"^Select object"))
    expect(boxes).to_have_count(2)
    wrist = Annotation.objects.get(task_id=task_id, data__camera="cam_right_wrist")
    assert wrist.data["w"] > 5 and wrist.data["x"] >= 0
    listed.get_by_role("button", name=re.compile(r"^Delete object")).last.click()
    expect(boxes).to_have_count(1)
    listed.get_by_role("button", name=re.compile(r"^Select object")).click()  # select it
    page.keyboard.press("Delete")
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text("Deleted object.")
    expect(listed).to_have_text("No annotations on this sample yet.")
    assert not Annotation.objects.filter(task_id=task_id, stage_key="objects").exists()


def test_a_resynced_sample_is_flagged_and_synced_in_one_click(login, live_server, tmp_path):
    import shutil

    from projects.dataset_services import dataset_dir, dataset_resync_run
    from projects.models import Dataset
    from tasks import services
    from tests.helpers.hdf5 import write_aloha

    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    late = services.annotation_create(
        actor=run.assignee,
        task=run.task,
        stage="segments",
        label="gripper_open",
        sample=None,
        data={"start": 2, "end": 30},
        attributes={"description": "whole grasp"},
    )
    dataset = Dataset.objects.get(tasks=run.task)
    source = tmp_path / "source"
    shutil.copytree(dataset_dir(dataset), source)
    dataset.source_path = str(source)
    dataset.save(update_fields=["source_path"])
    write_aloha(source / "episode_1.hdf5", T=8, seed=5)  # trimmed upstream
    assert dataset_resync_run(dataset_id=dataset.pk)["changed"] == ["episode_1"]

    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    reminder = page.locator("[data-changed]")
    expect(reminder).to_contain_text("episode_1 changed since this task was created")
    expect(page.get_by_role("button", name=re.compile(r"episode_1 ↻"))).to_be_visible()
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("[data-changed]")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"episode_1 ↻"))).to_have_count(0)
    late.refresh_from_db()
    assert not late.invalid  # a task-level segment is not tied to the trimmed sample
    assert run.task.events.filter(kind="samples_synced").exists()


def test_bad_segment_input_and_a_lost_connection_are_said_and_save_nothing(login, live_server):
    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    problems = page.get_by_role("alert", name="Problems")
    page.get_by_label("description *").fill("grasp")
    page.get_by_role("button", name="Add segment").click()
    expect(problems).to_have_text("Set where the segment starts and ends (From and to).")
    page.get_by_label("Segment start").fill("5")
    page.get_by_label("Segment end").fill("9999")
    page.get_by_role("button", name="Add segment").click()
    expect(problems).to_contain_text("Frames of episode_0 run from 0 to")

    page.route("**/api/v1/tasks/*/annotations/", lambda route: route.abort())
    page.get_by_label("Segment end").fill("20")
    page.get_by_role("button", name="Add segment").click()
    expect(problems).to_contain_text("The server could not be reached; nothing was saved.")
    assert not Annotation.objects.filter(task=run.task_id, stage_key="segments").exists()


def test_a_segment_drawn_by_dragging_on_the_timeline(login, live_server):
    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    first = run.task.datasets.first().samples.order_by("index").first()
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    page.get_by_label("description *").fill("reach and lift")
    timeline = page.locator("svg.timeline")
    timeline.scroll_into_view_if_needed()
    box = timeline.bounding_box()
    n = first.num_frames - 1
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 20 / n, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 50 / n, y, steps=6)
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^(49|50|51) / "))
    page.mouse.up()
    expect(page.get_by_role("status", name="Saved changes")).to_have_text("Saved gripper_open.")
    segment = Annotation.objects.get(task=run.task_id, stage_key="segments")
    assert 19 <= segment.data["start"] <= 21 and 49 <= segment.data["end"] <= 51
    assert segment.attributes == {"description": "reach and lift"}
    assert segment.sample_id == first.pk


def test_the_current_camera_fills_the_viewer_and_the_plots_stay_on_screen(login, live_server):
    """1440×900 and 1280×720: the current camera is drawn as large as the viewer allows (its
    aspect kept), the others are thumbnails to switch to, and the timeline and the series
    plot are on screen without scrolling."""
    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    page = login("annotator")
    for width, height in ((1440, 900), (1280, 720)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
        expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
        image = page.locator(".frame-box img")
        page.wait_for_function("() => document.querySelector('.frame-box img').naturalWidth")
        natural = image.evaluate("(i) => i.naturalWidth / i.naturalHeight")
        stage = page.locator("[data-stage]").bounding_box()
        drawn = image.bounding_box()
        assert abs(drawn["width"] / drawn["height"] - natural) < 0.02
        # Fitted: it touches the stage's width or its height, and stays inside it.
        assert max(drawn["width"] / stage["width"], drawn["height"] / stage["height"]) > 0.98
        assert drawn["y"] >= stage["y"] - 1
        assert drawn["y"] + drawn["height"] <= stage["y"] + stage["height"] + 1
        assert drawn["width"] > (480 if width == 1440 else 360)  # was 384 px at 1440×900
        for plot in ("svg.timeline", "svg.series"):
            box = page.locator(plot).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= height, (plot, box, height)
        assert page.evaluate("document.scrollingElement.scrollHeight") <= height + 1
    cameras = page.get_by_role("group", name="Cameras")
    expect(cameras.get_by_role("button")).to_have_count(2)
    cameras.get_by_role("button", name="Show cam_right_wrist").click()
    expect(image).to_have_attribute("alt", "cam_right_wrist frame")
    expect(page.get_by_label("Drawing area on cam_right_wrist")).to_be_visible()
    expect(cameras.get_by_role("button", name="Show cam_high")).to_have_attribute(
        "aria-pressed", "false"
    )


def open_objects_stage(page, live_server):
    """Start the next task (its objects stage) as the page's annotator; the frame's image is
    loaded. Returns the task id."""
    page.goto(f"{live_server.url}/workspace/")
    page.get_by_role("button", name="Start next task").click()
    expect(page).to_have_url(re.compile(r"/workspace/\d+/objects/$"))
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    page.wait_for_function("() => document.querySelector('svg.overlay').viewBox.baseVal.width")
    return int(re.search(r"/workspace/(\d+)/", page.url).group(1))


def on_screen(page, x, y):
    """The screen position of image pixel (x, y) of the current camera, at the current zoom."""
    box = page.locator(".frame-box img").bounding_box()
    natural = page.locator(".frame-box img").evaluate("(i) => i.naturalWidth")
    scale = box["width"] / natural
    return box["x"] + x * scale, box["y"] + y * scale


def test_zoom_at_the_cursor_pan_and_draw_exact_in_image_pixels(login, live_server):
    page = login("annotator")
    page.set_viewport_size({"width": 1440, "height": 900})
    task_id = open_objects_stage(page, live_server)
    level = page.get_by_label("Zoom level")
    fitted = level.text_content()
    image = page.locator(".frame-box img")
    fitted_scale = image.bounding_box()["width"] / image.evaluate("(i) => i.naturalWidth")
    # The wheel zooms in at the cursor: the image pixel under it stays under it.
    anchor = on_screen(page, 20, 20)
    page.mouse.move(*anchor)
    for _ in range(2):
        page.mouse.wheel(0, -300)
    expect(level).not_to_have_text(fitted)
    # Two wheel notches of 300 px zoom in 3.3 times (e^0.6 each): wait for both.
    page.wait_for_function(
        "(s) => new DOMMatrix(getComputedStyle(document.querySelector('.frame-box')).transform)"
        ".a > s * 3.2",
        arg=fitted_scale,
    )
    # The pointer sits on whole screen pixels: the anchor stays within a fraction of an
    # image pixel (it was 20, 20 before zooming).
    box = page.locator(".frame-box img").bounding_box()
    scale = box["width"] / page.locator(".frame-box img").evaluate("(i) => i.naturalWidth")
    under = ((anchor[0] - box["x"]) / scale, (anchor[1] - box["y"]) / scale)
    assert abs(under[0] - 20) < 0.2 and abs(under[1] - 20) < 0.2, under

    # Drawn at this zoom, the box is saved in image pixels.
    page.get_by_label("category *").select_option("block")
    page.mouse.move(*on_screen(page, 14, 15))
    page.mouse.down()
    page.mouse.move(*on_screen(page, 26, 24), steps=5)
    page.mouse.up()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text("Saved object.")
    data = Annotation.objects.get(task_id=task_id, stage_key="objects").data
    for key, value in {"x": 14, "y": 15, "w": 12, "h": 9}.items():
        assert abs(data[key] - value) <= 0.15, (key, data)

    # Space + drag pans (and plays nothing); the middle button pans too.
    before = page.locator(".frame-box img").bounding_box()
    page.keyboard.down(" ")
    page.mouse.move(700, 400)
    page.mouse.down()
    page.mouse.move(760, 430, steps=4)
    page.mouse.up()
    page.keyboard.up(" ")
    moved = page.locator(".frame-box img").bounding_box()
    assert (round(moved["x"] - before["x"]), round(moved["y"] - before["y"])) == (60, 30)
    expect(page.get_by_role("button", name="Play")).to_have_text("▶ Play")
    page.mouse.move(700, 400)
    page.mouse.down(button="middle")
    page.mouse.move(680, 390, steps=3)
    page.mouse.up(button="middle")
    again = page.locator(".frame-box img").bounding_box()
    assert (round(again["x"] - moved["x"]), round(again["y"] - moved["y"])) == (-20, -10)
    assert Annotation.objects.filter(task_id=task_id, stage_key="objects").count() == 1

    # Keys: 0 is 100 % (an image pixel per screen pixel), F fits again.
    page.keyboard.press("0")
    expect(level).to_have_text("100 %")
    assert round(page.locator(".frame-box img").bounding_box()["width"]) == page.locator(
        ".frame-box img"
    ).evaluate("(i) => i.naturalWidth")
    page.keyboard.press("f")
    expect(level).to_have_text(fitted)
    page.keyboard.press("+")
    expect(level).not_to_have_text(fitted)


def near(data, **expected):
    """Saved coordinates within a screen pixel (about 0.2 image pixels at this zoom) of
    ``expected``: a drag's two ends each sit on whole screen pixels."""
    return all(abs(data[k] - v) <= 0.25 for k, v in expected.items())


def test_move_resize_and_nudge_a_box_saved_with_its_version_and_undone(login, live_server):
    from tasks import services

    page = login("annotator")
    page.set_viewport_size({"width": 1440, "height": 900})
    task_id = open_objects_stage(page, live_server)
    first = page.evaluate(
        "JSON.parse(document.getElementById('workspace-data').textContent)"
        ".samples.find((s) => s.in_stage)"
    )
    run = StageRun.objects.get(task_id=task_id, stage_key="objects")
    box = services.annotation_create(
        actor=run.assignee,
        task=run.task,
        stage="objects",
        label="object",
        sample=first["id"],
        data={"frame": 0, "camera": "cam_high", "x": 10, "y": 10, "w": 20, "h": 20},
        attributes={"category": "block"},
    )
    page.reload()
    expect(page.locator(f'svg.overlay rect.saved[data-id="{box.pk}"]')).to_have_count(1)
    page.wait_for_function("() => document.querySelector('svg.overlay').viewBox.baseVal.width")
    saved = page.get_by_role("status", name="Saved changes")

    # Press inside the box and drag: it moves by the image pixels dragged.
    page.mouse.move(*on_screen(page, 20, 20))
    page.mouse.down()
    page.mouse.move(*on_screen(page, 25, 28), steps=5)
    page.mouse.up()
    expect(saved).to_contain_text("Moved object: frame 0, 15,18 20×20.")
    box.refresh_from_db()  # the pointer sits on whole screen pixels: a tenth of a pixel off
    assert near(box.data, x=15, y=18, w=20, h=20) and box.version == 2, box.data
    expect(page.locator("svg.overlay rect.handle")).to_have_count(8)  # selected: handles

    # The bottom-right handle resizes it.
    page.mouse.move(*on_screen(page, 35, 38))
    page.mouse.down()
    page.mouse.move(*on_screen(page, 41, 42), steps=5)
    page.mouse.up()
    expect(saved).to_contain_text("Resized object: frame 0, 15,18 26×24.")
    box.refresh_from_db()
    assert near(box.data, x=15, y=18, w=26, h=24) and box.version == 3, box.data

    # Arrow keys nudge the selected box (one save for a run of presses), Ctrl+Z undoes it.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowDown")
    expect(saved).to_contain_text("Moved object: frame 0, 13,28 26×24.")
    box.refresh_from_db()
    assert near(box.data, x=13, y=28) and box.version == 4, box.data
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / "))  # no frame step
    page.keyboard.press("Control+z")
    expect(saved).to_have_text("Undone: changed object.")
    box.refresh_from_db()
    assert near(box.data, x=15, y=18) and box.version == 5, box.data

    # Someone else moves it meanwhile: a drag saves nothing and shows both versions.
    services.annotation_update(
        actor=run.assignee,
        annotation=box,
        version=5,
        data={**box.data, "x": 2, "y": 2},
    )
    page.mouse.move(*on_screen(page, 20, 20))
    page.mouse.down()
    page.mouse.move(*on_screen(page, 22, 20), steps=3)
    page.mouse.up()
    problems = page.get_by_role("alert", name="Problems")
    expect(problems).to_contain_text("Conflict: someone changed this annotation")
    expect(problems).to_contain_text("Yours: frame 0, 17,18 26×24")
    expect(problems).to_contain_text("Saved (version 6): frame 0, 2,2 26×24")
    box.refresh_from_db()
    assert (box.data["x"], box.version) == (2, 6)


def test_ctrl_enter_submits_from_the_description_field(login, live_server):
    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key="segments", assignee__username="annotator"
    ).first()
    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    page.get_by_label("Segment start").fill("3")
    page.get_by_label("Segment end").fill("17")
    description = page.get_by_label("description *")
    description.fill("reach for the block")
    page.get_by_role("button", name="Add segment").click()
    expect(page.get_by_role("list", name="Annotations of this sample")).to_contain_text(
        "frames 3–17"
    )
    description.focus()  # the natural moment: the description was just typed
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(f"{live_server.url}/workspace/?done=submitted")
    run.refresh_from_db()
    assert run.status == "completed"


def test_draw_first_describe_after_and_submit_points_to_the_incomplete_box(login, live_server):
    page = login("annotator")
    page.set_viewport_size({"width": 1440, "height": 900})
    task_id = open_objects_stage(page, live_server)
    draw_box(page, 40, 40, 120, 110)  # before choosing the required category
    expect(page.get_by_role("status", name="Saved changes")).to_have_text(
        "Saved object, incomplete: set category (required), then Save."
    )
    box = Annotation.objects.get(task_id=task_id, stage_key="objects")
    assert box.attributes == {"occluded": False}
    listed = page.get_by_role("list", name="Annotations of this sample")
    expect(listed.locator("li.incomplete")).to_contain_text("incomplete: set category")
    expect(page.locator(f'svg.overlay rect.saved.incomplete[data-id="{box.pk}"]')).to_have_count(1)

    # Elsewhere first: submit refuses, says why and goes back to the incomplete box.
    page.get_by_label("Frame", exact=True).fill("7")
    page.get_by_role("button", name=re.compile(r"^Select object")).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Submit stage").click()
    expect(page.get_by_role("alert", name="Problems")).to_contain_text(
        "lacks the required category"
    )
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / "))
    expect(listed.locator("li.incomplete")).to_have_attribute("aria-current", "true")
    save = page.get_by_role("button", name=f"Save object #{box.pk}")
    expect(save).to_be_visible()
    page.get_by_label("category *").select_option("block")
    save.click()
    expect(page.get_by_role("status", name="Saved changes")).to_have_text(
        "Saved changes to object."
    )
    expect(listed.locator("li.incomplete")).to_have_count(0)
    box.refresh_from_db()
    assert box.attributes == {"category": "block", "occluded": False} and box.version == 2


def test_the_shortcuts_dialog_opens_at_its_title_and_reads_at_1280x720(login, live_server):
    page = login("annotator")
    page.set_viewport_size({"width": 1280, "height": 720})
    open_objects_stage(page, live_server)
    page.get_by_role("button", name="Shortcuts").click()
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    # It opens at its title (not scrolled down to the Close button at its end)...
    title = dialog.get_by_role("heading", name="Keyboard shortcuts").bounding_box()
    assert title["y"] >= dialog.bounding_box()["y"], title
    # ...and each key's description has room: a few words a line, not one.
    table = dialog.locator("dl").bounding_box()
    widths = [d.bounding_box()["width"] for d in dialog.locator("dd").all()]
    assert min(widths) >= 0.5 * table["width"], (widths, table)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
