"""Demo experience posts and notifications (issue 14), part of ``seed_demo`` (core/demo.py).

Four posts in the demo project (one pinned to a task and a frame, one promoted to the
guidelines), comments on them, and a problem reported on a task and answered, so the
Experience page and the notifications of ``annotator``, ``reviewer`` and ``manager`` are not
empty. Everything goes through the services, so the notifications are the ones the app
writes (a comment on my post, a problem reported, its answer); the demo's review rejects and
audit findings have already told the annotators about those (dated here like their tasks,
the older ones read). Cheap (a few dozen queries)
and idempotent: nothing is added once the project has posts.
"""

from projects.models import Project


def seed_demo_experience(*, project: Project, users: dict) -> list[str]:
    from experience import services as experience_services
    from experience.models import Post
    from tasks import services as task_services
    from tasks.models import Comment, Task

    if Post.objects.filter(project=project).exists():
        return []
    _date_history_notifications()
    ana, noah, ravi, maya = (
        users["annotator"],
        users["annotator2"],
        users["reviewer"],
        users["manager"],
    )
    tasks = {t.name: t for t in Task.objects.filter(project=project).select_related("project")}
    reworked = tasks.get("Sent back for rework")
    pins: dict = {}
    if reworked is not None:
        sample = reworked.datasets.first().samples.first() if reworked.datasets.exists() else None
        pins = {"task": reworked.pk}
        if sample is not None:
            pins.update(sample=sample.pk, frame=min(20, sample.num_frames - 1))
    made = []
    grasp = experience_services.post_create(
        actor=ana,
        project=project,
        title="Where a grasp really starts",
        body="The reviewer sent my segments back: the grasp starts when the gripper begins "
        "to open towards the block, about ten frames before it touches it.\n\n"
        "Scrub back from the contact frame until the fingers stop moving apart — that "
        "frame is the start.",
        **pins,
    )
    experience_services.comment_create(
        actor=noah, post=grasp, body="Same for releases: the end is when the fingers stop."
    )
    experience_services.comment_create(
        actor=ravi, post=grasp, body="Exactly what I check. Promoting this one."
    )
    experience_services.post_promote(actor=ravi, post=grasp)
    made.append(grasp.title)
    boxes = experience_services.post_create(
        actor=noah,
        project=project,
        title="Boxing a cup behind the gripper",
        body="When the gripper hides more than half of a cup, box what you see and tick "
        "occluded; do not guess the hidden edge.",
    )
    experience_services.comment_create(
        actor=maya, post=boxes, body="Good — please also say which camera you boxed in."
    )
    made.append(boxes.title)
    shortcut = experience_services.post_create(
        actor=ravi,
        project=project,
        title="Review faster with the stage strip",
        body="Open the task page first: the stage strip shows which stage changed since the "
        "last attempt, so you only re-check what was reworked.",
    )
    made.append(shortcut.title)
    shifts = experience_services.post_create(
        actor=maya,
        project=project,
        title="Night shift: report frozen cameras as problems",
        body="When a camera freezes or drops frames, report a problem on the task instead of "
        "skipping it, so we can re-record the episode.",
    )
    experience_services.comment_create(
        actor=ana, post=shifts, body="Will do — there is one on Reach and grasp already."
    )
    made.append(shifts.title)
    # A problem an annotator reports (the manager and the reviewer hear of it) and the
    # reviewer's answer (the annotator hears of it).
    started = tasks.get("Reach and grasp")
    if started is not None:
        problem = task_services.comment_create(
            actor=ana,
            task=started,
            kind=Comment.Kind.PROBLEM,
            stage_key="segments",
            body="The wrist camera freezes for a second in the middle: mark the grasp "
            "from the top camera only?",
        )
        task_services.comment_create(
            actor=ravi,
            task=started,
            kind=Comment.Kind.SOLUTION,
            parent=problem.pk,
            stage_key="segments",
            body="Yes, the top camera is enough; note the freeze in the description.",
        )
    night = tasks.get("Night shift review")
    if night is not None:
        task_services.comment_create(
            actor=noah,
            task=night,
            kind=Comment.Kind.PROBLEM,
            body="Episode 2 ends before the block is released: is it usable?",
        )
    return made


def _date_history_notifications() -> None:
    """The demo's histories ran through the services today and moved their times back
    afterwards; the notifications they wrote get the time of their task's last event, and
    those older than a day are read (the top bar counts what is new)."""
    from datetime import timedelta

    from django.db.models import F, OuterRef, Subquery
    from django.utils import timezone

    from notifications.models import Notification
    from tasks.models import TaskEvent

    last = TaskEvent.objects.filter(task=OuterRef("task")).order_by("-created_at")
    Notification.objects.filter(task__isnull=False).update(
        created_at=Subquery(last.values("created_at")[:1])
    )
    Notification.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)).update(
        read_at=F("created_at") + timedelta(hours=2)
    )
