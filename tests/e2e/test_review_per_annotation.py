"""Review per annotation in the browser (issue 17): a reviewer rejects one annotation with a
comment, and the annotator finds the comment on it, in its stage only."""

import re

from playwright.sync_api import expect

from tasks.models import Annotation, AnnotationReview, StageRun, Task


def open_sample(page, name):
    page.locator("[data-samples]").get_by_role("button", name=re.compile(rf"{name}$")).click()
    expect(page.locator("[data-samples] [aria-current='true']")).to_contain_text(name)


def test_a_reviewer_rejects_one_box_and_the_annotator_sees_it_only_on_it(
    login, live_server, browser
):
    task = Task.objects.get(name="Night shift review")
    box = Annotation.objects.filter(task=task, stage_key="objects").order_by("id").first()
    page = login("reviewer")
    page.goto(f"{live_server.url}/workspace/{task.pk}/full_review/")
    expect(page.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    open_sample(page, box.sample.name)
    annotations = page.get_by_role("list", name="Annotations of this sample")
    page.get_by_label("Comment", exact=True).fill("The box cuts the block's left edge.")
    annotations.get_by_role("button", name=f"Needs fix: object #{box.pk}").click()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text("object: rejected")
    item = annotations.locator(f"li[data-annotation='{box.pk}']")
    expect(item).to_contain_text("Rejected by reviewer")
    # A grasp nobody segmented: marked missing here, it goes to the segments stage.
    page.get_by_label("Comment", exact=True).fill("The second grasp is not segmented.")
    page.get_by_label("Missing label").select_option("gripper_open")
    page.get_by_role("button", name="Mark missing on this frame").click()
    missing = page.get_by_role("list", name="Marked missing by the reviewer")
    expect(missing).to_contain_text("Missing gripper_open (segments)")
    # Without a stage comment: the rejected box and the missing grasp say it all.
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/workspace/?done=rejected")
    review = AnnotationReview.objects.get(annotation=box)
    assert (review.verdict, review.stage_key) == ("rejected", "objects")
    runs = {r.stage_key: r for r in StageRun.objects.filter(task=task)}
    assert runs["objects"].status == "in_progress" and runs["objects"].attempt == 2
    assert AnnotationReview.objects.get(annotation=None).stage_key == "segments"

    annotator = login("annotator", new_context=True)
    annotator.goto(f"{live_server.url}/workspace/{task.pk}/objects/")
    expect(annotator.locator("body")).to_have_attribute("data-workspace-ready", "true")
    open_sample(annotator, box.sample.name)
    item = annotator.locator(f"[data-annotations] li[data-annotation='{box.pk}']")
    expect(item).to_contain_text("Rejected by reviewer")
    pinned = annotator.get_by_role("list", name=f"Comments on object #{box.pk}")
    expect(pinned).to_contain_text("The box cuts the block's left edge.")
    expect(annotator.locator("body")).not_to_contain_text("second grasp")  # segments' concern
    # The segments stage (reopened too, no boxes) shows none of it.
    annotator.goto(f"{live_server.url}/workspace/{task.pk}/segments/")
    expect(annotator.locator("body")).to_have_attribute("data-workspace-ready", "true")
    comments = annotator.get_by_role("list", name="Comments", exact=True)
    expect(comments).to_contain_text("Episode 2 ends")  # the task's other remarks are there
    expect(annotator.locator("body")).not_to_contain_text("left edge")
    expect(annotator.locator("body")).not_to_contain_text("Rejected by")
    expect(annotator.get_by_role("list", name="Marked missing by the reviewer")).to_contain_text(
        "The second grasp is not segmented."
    )


def test_the_task_pages_batch_tab_previews_the_count_and_applies(login, live_server):
    from blueprints import services as blueprints
    from projects.models import Dataset, Project
    from tasks import services

    project = Project.objects.get(slug="pick-and-place")
    manager = project.created_by
    blueprints.blueprint_activate(actor=manager, blueprint=project.blueprints.get(name="default"))
    dataset = Dataset.objects.get(name="Sorting blocks")
    task = services.task_create(
        actor=manager, project=project, name="Outcomes", datasets=[dataset.pk],
        annotators=["annotator"],
    )  # fmt: skip
    page = login("annotator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    page.get_by_role("tab", name="Batch annotation").click()
    expect(page.get_by_text("applies to an annotate stage you have in progress")).to_be_visible()
    services.stage_start(actor=task.annotators.get(), task=task, stage_key="annotate")
    page.get_by_role("tab", name="Annotation data").click()  # and back: the tab comes by htmx
    expect(page.get_by_role("tab", name="Annotation data")).to_have_attribute(
        "aria-selected", "true"
    )
    page.get_by_role("tab", name="Batch annotation").click()
    form = page.get_by_role("form", name="Batch annotation")
    form.get_by_label("Class").select_option("outcome")
    form.get_by_label("Value").select_option("failure")
    options = form.get_by_label("Samples").locator("option")
    names = [options.nth(i).get_attribute("value") for i in range(3)]
    form.get_by_label("Samples").select_option(names)
    expect(form.get_by_role("status")).to_have_text("outcome goes to 3 samples.")
    form.get_by_role("button", name="Apply to 3 samples").click()
    expect(form.get_by_role("status")).to_have_text("Applied outcome to 3 samples.")
    saved = Annotation.objects.filter(task=task, label="outcome", data__value="failure")
    assert sorted(str(a.sample_id) for a in saved) == sorted(names)
    expect(options.nth(0)).to_contain_text("✓")
    # The same again: nothing to do, and the preview says why.
    form.get_by_label("Samples").select_option(names[:1])
    expect(form.get_by_role("status")).to_contain_text("goes to 0 samples. Skipped 1")
    expect(form.get_by_role("button", name="Apply")).to_be_disabled()
