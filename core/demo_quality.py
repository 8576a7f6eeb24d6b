"""Demo data for the quality page (issue 13), part of ``seed_demo`` (core/demo.py).

Six weeks of reviewed and audited work in the demo project, and a small stage-level project
with standard audits (a fixed stage, a stage sent back to rework), so every figure and chart
of the quality page has real values and trends. Everything runs through the services; only
the times are moved back afterwards (``_Timeline``, ``_backdate``).
"""

from dataclasses import dataclass

from django.db import transaction

from projects import services as project_services
from projects.models import Dataset, DatasetFormat, ImportStatus, Project, Role, Sample

QUALITY_WEEKS = 6
CONSENSUS_BLUEPRINT = "pick-and-place-consensus"
BIN_PICKING_SLUG = "bin-picking"
# The fixless audits of the history, per week (0: the oldest); see ``_history_audit``.
HISTORY_AUDITS = {
    0: ("errors",),
    1: ("upheld",),
    2: ("withdrawn", "clean"),
    3: ("missing",),
    4: ("notes",),
    5: ("open",),
}


@dataclass(frozen=True)
class _Episode:
    week: int  # 0: QUALITY_WEEKS weeks ago
    number: int
    segments: str  # who marks the grasp segments
    objects: tuple[str, ...]  # who boxes the objects: two for the consensus blueprint
    rejected: bool = False  # the reviewer sends the first attempt back
    gap: bool = False  # one sample is left without a grasp segment (completeness)

    @property
    def name(self) -> str:
        return f"QA week {self.week + 1} · episode {self.number + 1}"


def _history_plan() -> list[_Episode]:
    """Two episodes a week (few: every step is a real service call, and seeding stays
    quick), both annotators on every stage over the weeks; from the third week the second
    episode uses the consensus blueprint."""
    ana, noah = "annotator", "annotator2"
    rejected = {(0, 0), (1, 1), (3, 0)}  # fewer as the weeks go by
    gaps = {(1, 0), (4, 0)}
    plan = []
    for week in range(QUALITY_WEEKS):
        one, other = (ana, noah) if week % 2 == 0 else (noah, ana)
        first = _Episode(week, 0, one, (other,), (week, 0) in rejected, (week, 0) in gaps)
        # The second: one annotator does both stages, or two box the same samples.
        boxes = (ana, noah) if week >= 2 else (other,)
        second = _Episode(week, 1, other, boxes, (week, 1) in rejected, (week, 1) in gaps)
        plan += [first, second]
    return plan


class _Timeline:
    """When one history task's steps happened. The services run now; ``later`` marks the
    real moment a step begins and the past time it stands for; ``_backdate`` moves every row
    the step wrote (and every time it set) to that past."""

    def __init__(self, start) -> None:
        from django.utils import timezone

        self.steps = [(timezone.now(), start)]

    def later(self, **delta) -> None:
        from datetime import timedelta

        from django.utils import timezone

        self.steps.append((timezone.now(), self.steps[-1][1] + timedelta(**delta)))


def _backdate(timelines: dict[int, _Timeline]) -> None:
    """Move each history task's rows to when its steps happened: one UPDATE per table and
    time field, over all the tasks. Queryset updates, not services: nothing in the app moves
    time, and demo history is the one place where rows must look older than they are."""
    from django.db.models import Case, DateTimeField, F, Q, When

    from audits.models import (
        AgreementScore,
        Audit,
        AuditedWork,
        AuditFinding,
        AuditFix,
        ReviewOutcome,
    )
    from tasks.models import Annotation, Comment, Delivery, StageRun, Task, TaskEvent

    # An update may not join: audit fixes are found by their audits' ids.
    audits_of: dict[int, list[int]] = {}
    for audit, task in Audit.objects.filter(task__in=timelines).values_list("pk", "task"):
        audits_of.setdefault(task, []).append(audit)

    def owned(task_field: str, task: int) -> Q:
        if task_field == "audit":
            return Q(audit__in=audits_of.get(task, []))
        return Q(**{task_field: task})

    def moved(field: str, task_field: str) -> Case:
        whens = []
        for task, timeline in timelines.items():
            mine = owned(task_field, task)
            # The latest step first: a row belongs to the last step that began before it.
            for real, past in reversed(timeline.steps[1:]):
                since = Q(**{f"{field}__gte": real})
                whens.append(When(mine & since, then=F(field) + (past - real)))
            real, past = timeline.steps[0]
            whens.append(When(mine, then=F(field) + (past - real)))
        return Case(*whens, default=F(field), output_field=DateTimeField())

    for model, task_field, fields in (
        (Task, "pk", ("created_at", "updated_at", "finished_at")),
        (StageRun, "task", ("started_at", "last_active_at", "submitted_at", "completed_at")),
        (TaskEvent, "task", ("created_at",)),
        (Annotation, "task", ("created_at", "updated_at")),
        (Comment, "task", ("created_at",)),
        (Delivery, "task", ("created_at",)),
        (ReviewOutcome, "task", ("created_at",)),
        (AgreementScore, "task", ("created_at",)),
        (Audit, "task", ("created_at", "completed_at")),
        (AuditedWork, "task", ("completed_at",)),
        (AuditFinding, "task", ("created_at", "updated_at")),
        (AuditFix, "audit", ("created_at",)),
    ):
        if task_field == "audit":
            rows = model.objects.filter(audit__in=[a for ids in audits_of.values() for a in ids])
        else:
            rows = model.objects.filter(**{f"{task_field}__in": list(timelines)})
        rows.update(**{field: moved(field, task_field) for field in fields})


def worked_minutes(task_ids) -> None:
    """Demo annotate runs are submitted the moment they start (the services run in a row):
    give each 8 to 20 minutes of active time, as people take (the reports' time and
    medians, the dashboard's time worked today), varied by run. One UPDATE."""
    from django.db.models import F, Value
    from django.db.models.functions import Mod

    from tasks.models import StageRun

    StageRun.objects.filter(
        task__in=list(task_ids),
        kind__in=["annotate", "consensus"],
        active_seconds__lt=60,
    ).update(active_seconds=Value(480.0) + Mod(F("id") * 7, 13) * Value(60.0))


def _week_day(weeks_ago: int, day: int, hour: int):
    """Day ``day`` (0: Monday) of the week ``weeks_ago`` weeks before this one."""
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.localtime()
    monday = now - timedelta(days=now.weekday() + 7 * weeks_ago - day)
    return monday.replace(hour=hour, minute=0, second=0, microsecond=0)


def seed_demo_quality(project: Project, users: dict) -> list[str]:
    """The history the quality page reads: reviews with rejects, fixless audits with every
    kind of finding and answer, consensus agreement, completeness gaps; and a stage-level
    project with a fixed stage. Does nothing once the demo project has audits."""
    from audits.models import Audit

    if Audit.objects.filter(project=project).exists():
        return []
    with transaction.atomic():  # all or nothing: a half-seeded history is not seeded again
        return _seed_quality(project, users)


def _seed_quality(project: Project, users: dict) -> list[str]:
    from projects.services import project_quality_settings_update

    # Audit next has units to draw: the history audits some, the rest wait in the queue.
    project_quality_settings_update(
        actor=users["manager"], project=project, audit_percent=30, audit_kind="fixless"
    )
    timelines: dict[int, _Timeline] = {}
    made = _seed_history(project, users, timelines)
    made += _seed_bin_picking(users, timelines)
    _backdate(timelines)
    worked_minutes(timelines)
    from audits.rollups import quality_touch_tasks  # the rows moved: rebuild their figures

    quality_touch_tasks(timelines)
    return made


def _consensus_blueprint(project: Project, actor):
    """The example with its objects boxed by two annotators each (not active: the history
    names it), so consistency is a measured figure; a warning check on the grasps (a pick
    and a place make two) flags work for reviewers without blocking it (QC flags)."""
    import yaml

    from blueprints.models import Blueprint
    from blueprints.services import blueprint_save, example_source

    found = Blueprint.objects.filter(project=project, name=CONSENSUS_BLUEPRINT).first()
    if found is not None:
        return found
    definition = yaml.safe_load(example_source("pick-and-place"))
    definition["name"] = CONSENSUS_BLUEPRINT
    definition["description"] = "Pick and place, with the objects boxed by two annotators."
    for stage in definition["stages"]:
        if stage["key"] == "objects":
            stage.update(kind="consensus", annotators=2, agreement=0.7)
        if stage["key"] == "segments":
            warn = {"rule": "min_count", "class": "gripper_open", "count": 2, "severity": "warn"}
            stage["checks"] = [*stage.get("checks", []), warn]
    blueprint, _ = blueprint_save(actor=actor, project=project, definition=definition)
    return blueprint


def _seed_history(project: Project, users: dict, timelines: dict[int, _Timeline]) -> list[str]:
    from tasks import services as task_services
    from tasks.models import Delivery

    manager = users["manager"]
    _consensus_blueprint(project, manager)
    datasets = list(
        Dataset.objects.filter(
            project=project, format=DatasetFormat.HDF5, status=ImportStatus.FINISHED
        ).order_by("num_samples", "name")[:2]
    )
    if not datasets:
        return []  # episodes to box and to measure completeness on: none imported
    plan = _history_plan()
    # The weeks before this one, episodes on Monday and Tuesday: what follows them (reviews,
    # reworks, audits, answers) stays within a few days, before this week.
    starts = [_week_day(QUALITY_WEEKS - e.week, e.number, 9) for e in plan]
    steps = [_Timeline(start) for start in starts]
    tasks = task_services.task_create_many(
        actor=manager, project=project,
        items=[
            {
                "name": e.name,
                "blueprint": CONSENSUS_BLUEPRINT if len(e.objects) > 1 else None,
                "datasets": [datasets[(e.week + e.number) % len(datasets)].pk],
                "annotators": ["annotator", "annotator2"],
                "reviewers": ["reviewer"],
                "batch": "night-shift",  # the blueprint's route: night-shift work is reviewed
            }
            for e in plan
        ],
    )  # fmt: skip
    by_week: dict[int, list] = {}
    for episode, task, timeline in zip(plan, tasks, steps, strict=True):
        timeline.later(hours=1)
        _history_work(task, episode, users)
        _history_review(task, episode, users, timeline)
        by_week.setdefault(episode.week, []).append(task)
    timelines.update((task.pk, timeline) for task, timeline in zip(tasks, steps, strict=True))
    # Each week's audits take the units the audit sampling did not draw first, so the drawn
    # ones stay in the reviewer's queue for Audit next.
    draws = dict(
        Delivery.objects.filter(task__in=tasks, stage_key="").values_list("task_id", "audit_draw")
    )
    for week, scenarios in HISTORY_AUDITS.items():
        undrawn_first = sorted(by_week.get(week, []), key=lambda t: -draws.get(t.pk, 0))
        for task, scenario in zip(undrawn_first, scenarios, strict=False):
            _history_audit(task, scenario, users, timelines[task.pk])
    return [t.name for t in tasks]


def _history_work(task, episode: _Episode, users: dict) -> None:
    """Grasp segments (one per sample, one sample left out for a gap) and object boxes on
    the objects stage's drawn samples; a consensus pair draws its boxes a few pixels apart,
    less so as the weeks go by."""
    from tasks import services as task_services

    samples = list(Sample.objects.filter(dataset__tasks=task).order_by("dataset", "index"))
    who = users[episode.segments]
    task_services.stage_start(actor=who, task=task, stage_key="segments")
    pinned = samples[:-1] if episode.gap and len(samples) > 1 else [None]
    for sample in pinned:
        task_services.annotation_create(
            actor=who, task=task, stage="segments", label="gripper_open",
            sample=sample.pk if sample else None, data={"start": 20, "end": 45},
            attributes={"description": "grasp the block, place it in the bin"},
        )  # fmt: skip
    task_services.stage_submit(actor=who, task=task, stage_key="segments")
    objects = task_services.spec_for(task.blueprint).by_key["objects"]
    drawn = task_services.stage_samples(task=task, stage=objects, samples=samples)
    for replica, username in enumerate(episode.objects):
        who = users[username]
        shift = replica * max(1, 5 - episode.week)
        task_services.stage_start(actor=who, task=task, stage_key="objects")
        for sample in drawn:
            task_services.annotation_create(
                actor=who, task=task, stage="objects", label="object", sample=sample.pk,
                data={"frame": 0, "camera": "cam_high", "x": 10 + shift, "y": 12, "w": 14, "h": 14},
                attributes={"category": "block"},
            )  # fmt: skip
        task_services.stage_submit(actor=who, task=task, stage_key="objects")


def _history_review(task, episode: _Episode, users: dict, timeline: _Timeline) -> None:
    """The reviewer decides the next day; a reject is reworked (the grasp moved) and
    approved the day after."""
    from tasks import services as task_services

    ravi = users["reviewer"]
    timeline.later(hours=20)
    if episode.rejected:
        task_services.stage_review(
            actor=ravi, task=task, stage_key="full_review", decision="reject",
            comment="The grasp starts ten frames earlier, when the gripper opens.",
        )  # fmt: skip
        timeline.later(hours=5)
        who = users[episode.segments]
        for segment in task.annotations.filter(stage_key="segments"):
            task_services.annotation_update(
                actor=who, annotation=segment, version=segment.version,
                data={"start": 10, "end": 45},
            )  # fmt: skip
        task_services.stage_submit(actor=who, task=task, stage_key="segments")
        for username in episode.objects:
            task_services.stage_submit(actor=users[username], task=task, stage_key="objects")
        timeline.later(hours=18)
    task_services.stage_review(actor=ravi, task=task, stage_key="full_review", decision="approve")


def _history_audit(task, scenario: str, users: dict, timeline: _Timeline) -> None:
    """A fixless audit two days after delivery, its findings answered the day after.

    Scenarios: ``errors`` (accepted), ``upheld`` (disputed, upheld), ``clean`` (no
    findings), ``withdrawn`` (disputed, withdrawn; a flag), ``missing`` (a missing box and an
    extraneous segment, accepted), ``notes`` (a comment and a confirmation), ``open`` (one
    error not answered yet, one dispute waiting for the auditor)."""
    from audits import services as audits

    ravi = users["reviewer"]
    people = {u.pk: u for u in users.values()}
    annotations = list(task.annotations.filter(invalid=False).order_by("pk"))
    box = next(a for a in annotations if a.label == "object")
    segment = next(a for a in annotations if a.label == "gripper_open")
    timeline.later(days=2)
    audit = audits.audit_create(actor=ravi, task=task, kind="fixless")

    def add(type, category="other", annotation=None, **extra):
        return audits.finding_add(
            actor=ravi, audit=audit, type=type, category=category,
            annotation=annotation.pk if annotation else None, **extra,
        )  # fmt: skip

    # (finding, the annotating side's answer, their words, the auditor's settlement)
    answers: list[tuple] = []
    if scenario == "errors":
        answers += [
            (add("error", "geometry", box, note="The box leaves out the block's far edge."),
             "accept", "", None),
            (add("error", "attribute", segment, attribute="description",
                 note="Say where the block goes: the bin."), "accept", "", None),
        ]  # fmt: skip
    elif scenario == "upheld":
        answers.append(
            (add("error", "wrong_class", box, note="That is the gripper, not an object."),
             "dispute", "It is the block inside the gripper.", True)
        )  # fmt: skip
        add("confirmation", annotation=segment, note="Start and end frames are right.")
    elif scenario == "withdrawn":
        answers.append(
            (add("error", "attribute", box, attribute="category", note="This is a cup."),
             "dispute", "It is the square block; the cup stands behind it.", False)
        )  # fmt: skip
        add("flag", note="The wrist camera is out of focus in this episode.")
    elif scenario == "missing":
        answers += [
            (add("error", "missing", sample=box.sample_id,
                 note="The second block on the table has no box."), "accept", "", None),
            (add("error", "extraneous", segment, note="The arm only moves here: no grasp."),
             "accept", "", None),
        ]  # fmt: skip
    elif scenario == "notes":
        add("comment", note="Tight boxes, thank you.")
        add("confirmation", annotation=box, note="Category checked against the top camera.")
    elif scenario == "open":
        add("error", "geometry", segment, note="The grasp ends five frames later.")
        answers.append(
            (add("error", "geometry", box, note="Half of the block is outside the box."),
             "dispute", "The box follows the edges I can see.", None)
        )  # fmt: skip
    audits.audit_complete(actor=ravi, audit=audit)
    if not answers:
        return
    timeline.later(hours=20)
    for finding, response, note, uphold in answers:
        audits.finding_respond(
            actor=people[finding.annotator_id], finding=finding, response=response, note=note
        )
        if uphold is not None:
            audits.finding_settle(
                actor=ravi, finding=finding, uphold=uphold,
                note="Upheld: compare with the top camera." if uphold else "Withdrawn: agreed.",
            )  # fmt: skip


BIN_PICKING_BLUEPRINT = {
    "name": "bin-picking",
    "description": "Mark the grasps and the outcome of each bin-picking episode.",
    "taxonomy": [
        {
            "key": "grasp",
            "name": "Grasp",
            "kind": "segment",
            "attributes": [{"key": "description", "type": "text", "required": True}],
        },
        {
            "key": "outcome",
            "name": "Outcome",
            "kind": "classification",
            "choices": ["success", "failure", "partial"],
        },
    ],
    "stages": [
        {
            "key": "grasps",
            "kind": "annotate",
            "classes": ["grasp"],
            "checks": [{"rule": "min_count", "class": "grasp", "count": 1}],
        },
        {"key": "outcome", "kind": "annotate", "classes": ["outcome"]},
    ],
}


def _seed_bin_picking(users: dict, timelines: dict[int, _Timeline]) -> list[str]:
    """A second, stage-level project: each stage is delivered when it completes, so its
    audits are standard — one fixes a grasp and delivers the stage again (fixes marked),
    the other accepts one stage and sends the other (an outcome) back to rework."""
    from blueprints.services import blueprint_activate, blueprint_save
    from projects.services import project_quality_settings_update
    from tasks import services as task_services

    if Project.objects.filter(slug=BIN_PICKING_SLUG).exists():
        return []
    manager, ravi = users["manager"], users["reviewer"]
    ana, noah = users["annotator"], users["annotator2"]
    project = project_services.project_create(
        actor=manager, name="Bin picking", slug=BIN_PICKING_SLUG, delivery="stage",
        description="Grasps and outcomes of a robot picking parts out of a bin.",
    )  # fmt: skip
    for user, role in ((ravi, Role.REVIEWER), (ana, Role.ANNOTATOR), (noah, Role.ANNOTATOR)):
        project_services.membership_add(actor=manager, project=project, user=user, role=role)
    blueprint, _ = blueprint_save(actor=manager, project=project, definition=BIN_PICKING_BLUEPRINT)
    blueprint_activate(actor=manager, blueprint=blueprint)
    project_quality_settings_update(
        actor=manager, project=project, audit_percent=50, audit_kind="standard"
    )
    made = []
    # (name, weeks ago, grasps by, outcome by, the outcome chosen, the audit)
    for name, weeks_ago, grasps_by, outcome_by, value, audit_of in (
        ("Tote 1 · episode 1", 3, ana, noah, "success", "fix"),
        ("Tote 1 · episode 2", 2, noah, ana, "failure", "reject"),
    ):
        timeline = _Timeline(_week_day(weeks_ago, 2, 10))
        task = task_services.task_create(
            actor=manager, project=project, name=name, annotators=["annotator", "annotator2"]
        )
        task_services.stage_start(actor=grasps_by, task=task, stage_key="grasps")
        grasp, _ = (
            task_services.annotation_create(
                actor=grasps_by, task=task, stage="grasps", label="grasp",
                data={"start": start, "end": end}, attributes={"description": what},
            )
            for start, end, what in ((12, 40, "pick the bolt"), (55, 80, "pick the nut"))
        )  # fmt: skip
        task_services.stage_submit(actor=grasps_by, task=task, stage_key="grasps")
        task_services.stage_start(actor=outcome_by, task=task, stage_key="outcome")
        outcome = task_services.annotation_create(
            actor=outcome_by, task=task, stage="outcome", label="outcome", data={"value": value}
        )
        task_services.stage_submit(actor=outcome_by, task=task, stage_key="outcome")
        made.append(name)
        timeline.later(days=1)
        _standard_audit(task, audit_of, grasp, outcome, users, timeline)
        timelines[task.pk] = timeline
    return made


def _standard_audit(task, audit_of: str, grasp, outcome, users: dict, timeline: _Timeline):
    """``fix``: the auditor moves the grasp's start and accepts (the stage is delivered
    again, its fix marked); ``reject``: the outcome goes back to its annotator, who corrects
    it (delivered again as attempt 2), after an audit of the grasps found no errors."""
    from audits import services as audits
    from tasks import services as task_services

    ravi = users["reviewer"]
    people = {u.pk: u for u in users.values()}
    if audit_of == "fix":
        audit = audits.audit_create(actor=ravi, task=task, stage="grasps", kind="standard")
        finding = audits.finding_add(
            actor=ravi, audit=audit, type="error", category="geometry", annotation=grasp.pk,
            note="The grasp starts when the gripper closes on the bolt, three frames later.",
        )  # fmt: skip
        task_services.annotation_update(
            actor=ravi, annotation=grasp, version=grasp.version,
            data={"start": 15, "end": 40}, audit=audit.pk,
        )  # fmt: skip
        audits.audit_complete(actor=ravi, audit=audit, decision="accept", note="Fixed the start.")
    else:
        audit = audits.audit_create(actor=ravi, task=task, stage="grasps", kind="standard")
        audits.audit_complete(actor=ravi, audit=audit, decision="accept", note="No errors.")
        audit = audits.audit_create(actor=ravi, task=task, stage="outcome", kind="standard")
        finding = audits.finding_add(
            actor=ravi, audit=audit, type="error", category="wrong_class",
            annotation=outcome.pk, note="The bolt slips out after the bin: a partial success.",
        )  # fmt: skip
        audits.audit_complete(actor=ravi, audit=audit, decision="reject")
        timeline.later(hours=6)
        who = people[outcome.author_id]
        outcome.refresh_from_db()
        task_services.annotation_update(
            actor=who, annotation=outcome, version=outcome.version, data={"value": "partial"}
        )
        task_services.stage_submit(actor=who, task=task, stage_key="outcome")
    timeline.later(hours=20)
    audits.finding_respond(actor=people[finding.annotator_id], finding=finding, response="accept")
