from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone

from blueprints.models import Blueprint
from projects.models import Dataset, Project


class TaskStatus(models.TextChoices):
    PENDING_START = "pending_start", "Pending start"
    IN_PROGRESS = "in_progress", "In progress"
    PENDING_REVIEW = "pending_review", "Pending review"
    REVIEW_PASSED = "review_passed", "Review passed"
    DATA_SUBMITTED = "data_submitted", "Data submitted"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"

    @classmethod
    def rank(cls, field: str = "priority") -> models.Case:
        """Urgency as a number for ordering in the database (low 0 … urgent 3): the one
        definition of the priority order, used by every list and by claiming work."""
        return models.Case(
            *[models.When(**{field: value}, then=n) for n, value in enumerate(cls.values)],
            output_field=models.IntegerField(),
        )


class LiveTaskManager(models.Manager):
    """Tasks not deleted: every read of tasks (``Task.objects``, ``project.tasks``) goes
    through it. A deleted task is hidden at once, then purged by a job
    (tasks.services.deletion)."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


# The condition of the task list's partial indexes: the default manager's filter.
LIVE = models.Q(deleted_at__isnull=True)


class Task(models.Model):
    """A unit of work that flows through the stages of one blueprint version.

    Its blueprint version is fixed at creation (PROTECT: a used version is never
    deleted or changed). Deleting a task removes its links to datasets, never the
    datasets themselves.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    blueprint = models.ForeignKey(Blueprint, on_delete=models.PROTECT, related_name="tasks")
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(
        max_length=20, choices=TaskStatus.choices, default=TaskStatus.PENDING_START
    )
    due_at = models.DateTimeField(null=True, blank=True)
    batch = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Samples whose data changed after this moment (a re-synced dataset) are flagged in the
    # workspace until someone syncs the task.
    samples_synced_at = models.DateTimeField(default=timezone.now)
    callback_url = models.URLField(max_length=1000, blank=True)
    unique_id = models.CharField(max_length=200, blank=True)
    datasets = models.ManyToManyField(Dataset, blank=True, related_name="tasks")
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="annotator_tasks"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="reviewer_tasks"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When the task last became done (review_passed or data_submitted; None while it is not):
    # set and cleared by the status machine (tasks.services.base.task_transition), read by
    # progress (tasks finished per day, the ETA) from an index.
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when the task is deleted: from then on no manager, list or count shows it, and a
    # job purges it with its rows (tasks.services.deletion). The lists' indexes are partial
    # on it (``LIVE``); the purge finds the deleted ones in ``task_deleted_idx``.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    # The task's datasets, read once when the task is locked (tasks.services.base.lock_task).
    _dataset_list: list[Dataset]
    # Read with the lock too: the ids of the people it names ("annotators", "reviewers") and,
    # for a review, the (stage, replica) of its runs with a first attempt's decision recorded.
    _named: dict[str, list[int]]
    _decided: set[tuple[str, int]]
    # And the review verdicts left open (review stage, stage, attempt): tasks.services.review.
    _open_verdicts: list[tuple[str, str, int]]

    all_objects = models.Manager()  # deleted tasks too: the purge only
    objects = LiveTaskManager()  # the default manager (Meta), related managers follow it

    class Meta:
        ordering = ["-created_at", "-pk"]
        default_manager_name = "objects"
        # Every index the lists, counts and progress read holds live tasks only (``LIVE``):
        # those queries (Task.objects) stay index-only, and hiding a task (an UPDATE of
        # ``deleted_at``) writes no entry into them — only into the primary key and the
        # foreign keys' indexes (tasks.services.deletion).
        # No (project, status) index: task_list_status_idx and task_status_progress_idx lead
        # with those columns for live tasks, the project's key index for all (every write paid
        # for a third copy of them).
        indexes = [
            # The purge's selection (tasks.services.deletion.tasks_purge_deleted): the deleted
            # tasks awaiting it, a handful of entries, instead of a scan of the whole table.
            models.Index(
                fields=["id"], name="task_deleted_idx", condition=models.Q(deleted_at__isnull=False)
            ),
            # The task list (tasks.selectors.task_list_for_user, ids first): each filter and
            # sort read in the list's order from an index, index-only on PostgreSQL, the
            # ``id`` tie-breaker included so deep pages skip index entries, not rows.
            # The default order (newest first) — and progress (projects.progress): the first
            # task of a project, tasks created per day.
            models.Index(
                fields=["project", "created_at", "id"], name="task_list_created_idx", condition=LIVE
            ),
            models.Index(
                fields=["created_at", "id"], name="task_all_created_idx", condition=LIVE
            ),  # admins
            models.Index(
                fields=["project", "status", "created_at", "id"],
                name="task_list_status_idx",
                condition=LIVE,
            ),
            models.Index(
                fields=["project", "priority", "created_at", "id"],
                name="task_list_priority_idx",
                condition=LIVE,
            ),
            models.Index(
                fields=["project", "batch", "created_at", "id"],
                name="task_list_batch_idx",
                condition=LIVE,
            ),
            models.Index(
                fields=["project", "due_at", "id"], name="task_list_due_idx", condition=LIVE
            ),
            models.Index(
                fields=["project", "name", "id"], name="task_list_name_idx", condition=LIVE
            ),
            # By urgency (``Priority.rank()``, the ORDER BY of the priority sorts, newest first
            # among equals): most urgent first read backwards, least urgent first forwards;
            # ``priority`` last so the scan is index-only (PostgreSQL needs the column the
            # expression reads).
            models.Index(
                F("project"),
                Priority.rank(),
                F("id"),
                F("priority"),
                name="task_list_urgency_idx",
                condition=LIVE,
            ),
            models.Index(
                F("project"),
                Priority.rank(),
                F("id").desc(),
                F("priority"),
                name="task_list_urgency_asc_idx",
                condition=LIVE,
            ),
            # Progress: a project's tasks by status and blueprint version, with their dates,
            # without the wide rows (index-only on PostgreSQL, read in the index's order; key
            # columns, as SQLite has no INCLUDE).
            models.Index(
                fields=["project", "status", "blueprint", "due_at", "created_at"],
                name="task_status_progress_idx",
                condition=LIVE,
            ),
            # Progress: tasks finished per day (index-only).
            models.Index(
                fields=["project", "finished_at"], name="task_finished_idx", condition=LIVE
            ),
        ]
        constraints = [
            # A deleted task awaiting its purge does not hold its unique id: the task can be
            # created again at once.
            models.UniqueConstraint(
                fields=["project", "unique_id"],
                condition=~models.Q(unique_id="") & LIVE,
                name="task_unique_id_per_project",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StageRun(models.Model):
    """The state of one stage for one task (a consensus stage has one run per replica)."""

    class Status(models.TextChoices):
        BLOCKED = "blocked"
        READY = "ready"
        IN_PROGRESS = "in_progress"
        SUBMITTED = "submitted"
        COMPLETED = "completed"
        SKIPPED = "skipped"

    # No index of its own: stagerun_unique_replica (task, stage_key, replica) leads with it.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs", db_index=False)
    # The task's project, copied when the run is created (a task never changes project):
    # progress reads a project's runs from its indexes without joining the tasks. A copy,
    # so no key of its own in the database: the task's key holds the run to a task of the
    # project (a second check a run at commit, ≈ 2.7 µs, for a value never chosen).
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )  # the progress indexes below lead with it
    stage_key = models.CharField(max_length=64)
    kind = models.CharField(max_length=20)
    replica = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BLOCKED)
    attempt = models.PositiveIntegerField(default=1)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stage_runs",
        db_index=False,  # the (assignee, status) index leads with it
    )
    routed_to = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    feedback = models.TextField(blank=True)
    # A review run that rejected work: the rework comes back to it, whatever routing says.
    rejected = models.BooleanField(default=False)
    agreement = models.FloatField(null=True, blank=True)
    # Completeness, measured when the run is submitted: the samples it had to annotate
    # (its sampling draw, invalid ones excluded) and those carrying every annotation and
    # required attribute the stage asks for.
    samples_total = models.PositiveIntegerField(default=0)
    samples_complete = models.PositiveIntegerField(default=0)
    # Messages of the stage's ``severity: warn`` checks that failed on submit: the work
    # went on, flagged for reviewers (counted as QC flags).
    qc_flags = models.JSONField(default=list, blank=True)
    active_seconds = models.FloatField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    # The workspace's last activity ping: a run past its stage's time_limit stays with a
    # person who is still working on it.
    last_active_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "stage_key", "replica"], name="stagerun_unique_replica"
            )
        ]
        indexes = [
            models.Index(fields=["assignee", "status"]),
            models.Index(fields=["status"]),
            # Progress (projects.progress), index-only on PostgreSQL: the stage funnel (a
            # project's unfinished runs per stage and status, when they last moved) ...
            models.Index(
                fields=[
                    "project",
                    "status",
                    "stage_key",
                    "kind",
                    "started_at",
                    "completed_at",
                    "task",
                    "assignee",
                ],
                name="stagerun_project_funnel_idx",
            ),
            # ... and work completed per day, recent work per person and per stage, the weekly
            # time per run (key columns: SQLite has no INCLUDE). Completed runs only: every
            # reader asks for completed_at from a time on (which implies it is set), and a
            # new task's runs are not written into it.
            models.Index(
                fields=[
                    "project",
                    "completed_at",
                    "kind",
                    "status",
                    "stage_key",
                    "assignee",
                    "active_seconds",
                    "started_at",
                ],
                condition=models.Q(completed_at__isnull=False),
                name="stagerun_project_done_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}/{self.stage_key}#{self.replica} {self.status}"

    def save(self, *args, **kwargs) -> None:
        if self.project_id is None and self.task_id is not None:
            self.project_id = self.task.project_id  # the task's, always
        super().save(*args, **kwargs)


class Annotation(models.Model):
    class Source(models.TextChoices):
        DRAWN = "drawn", "Drawn"
        PRELABEL = "prelabel", "Pre-label (not accepted yet)"
        ACCEPTED = "accepted", "Pre-label accepted"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotations")
    stage_key = models.CharField(max_length=64)
    replica = models.PositiveSmallIntegerField(default=0)
    sample = models.ForeignKey(
        "projects.Sample", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    label = models.CharField(max_length=64)
    kind = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    attributes = models.JSONField(default=dict, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    invalid = models.BooleanField(default=False)
    invalid_reason = models.CharField(max_length=500, blank=True)
    # Where the annotation came from: drawn in the workspace, or imported as a pre-label
    # (a model's prediction, an earlier export) that the annotator accepts, edits or deletes.
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.DRAWN)
    source_detail = models.CharField(max_length=200, blank=True)
    # One object across frames: the annotations of a task sharing a track id are its
    # keyframes (only keyframes are stored; the frames between are interpolated by
    # tasks.tracks, for drawing and for exports).
    track = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "id"]
        indexes = [models.Index(fields=["task", "stage_key"])]

    def __str__(self) -> str:
        return f"{self.label} ({self.kind}) v{self.version}"


class TaskEvent(models.Model):
    """Append-only history of a task: who did what, when."""

    # No index of its own: the (task, kind) index leads with it.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=40)
    stage_key = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["task", "id"]
        indexes = [models.Index(fields=["task", "kind"])]

    def __str__(self) -> str:
        return f"{self.task_id}: {self.kind} {self.stage_key}".strip()


class TaskDeletion(models.Model):
    """Who deleted which tasks of a project, and when: one row per project and delete
    (tasks.services.deletion). It outlives the purge, which takes the tasks with their
    events: the task ids are plain numbers here, not references. One row instead of a
    ``deleted`` TaskEvent per task: each event's reference to its task was checked at commit
    (a lock on the task row, ≈ 20 µs a task), more than the rest of a batch delete."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    task_ids = models.JSONField(default=list)  # sorted

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self) -> str:
        return f"{len(self.task_ids)} task(s) of project {self.project_id} by {self.actor_id}"


class Delivery(models.Model):
    """Finished work handed over: a whole task, or one annotate stage (stage-level delivery)."""

    class Callback(models.TextChoices):
        NONE = "none", "No callback"
        PENDING = "pending", "Sending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="deliveries")
    stage_key = models.CharField(max_length=64, blank=True)
    payload = models.JSONField()
    callback = models.CharField(max_length=10, choices=Callback.choices, default=Callback.NONE)
    # A reproducible draw in [0, 100) per delivered unit: the unit is in the audit sample
    # when it is below the project's audit percentage (a changed percentage applies at once).
    audit_draw = models.FloatField(default=100.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "id"]

    def __str__(self) -> str:
        return f"delivery of {self.task_id} {self.stage_key or 'task'}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    url = models.URLField(max_length=1000)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "id"]

    def __str__(self) -> str:
        return f"{self.url} → {self.status_code or self.error}"


class Comment(models.Model):
    """A remark on a task, optionally pinned to a sample, a frame and an annotation.

    A ``problem`` stays open until someone resolves it (a reviewer's reject comment is
    one); a ``solution`` answers a problem (``parent``).
    """

    class Kind(models.TextChoices):
        COMMENT = "comment", "Comment"
        PROBLEM = "problem", "Problem"
        SOLUTION = "solution", "Solution"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COMMENT)
    body = models.TextField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    stage_key = models.CharField(max_length=64, blank=True)
    sample = models.ForeignKey(
        "projects.Sample", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    frame = models.PositiveIntegerField(null=True, blank=True)
    annotation = models.ForeignKey(
        Annotation, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.task_id}"


class InvalidSample(models.Model):
    """A sample of a task marked unusable (blurred, wrong scene, truncated) with a reason.

    Per task, not per sample: the same episode may be fine for another task. Export
    cleaning leaves these samples out; a manager can restore them.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="invalid_samples")
    sample = models.ForeignKey("projects.Sample", on_delete=models.CASCADE, related_name="+")
    stage_key = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "sample"], name="invalid_sample_once_per_task")
        ]

    def __str__(self) -> str:
        return f"sample {self.sample_id} of task {self.task_id} invalid"


class AnnotationReview(models.Model):
    """A reviewer's verdict on one annotation (accepted or rejected), or a mark where one is
    missing (a sample, frame, label and region, no annotation).

    ``stage_key`` is the stage whose work it concerns (the annotation's, or the one that
    should have drawn the missing one): its feedback shows in that stage only. One verdict per
    annotation and review stage, the latest kept (each change is a TaskEvent); the comment
    (a problem, pinned to the annotation, or to the sample and frame of a missing one) says
    why. A reject of the review stage reopens the stages with these flagged."""

    class Verdict(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        MISSING = "missing", "Missing"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotation_reviews")
    review_stage = models.CharField(max_length=64)
    stage_key = models.CharField(max_length=64)
    annotation = models.ForeignKey(
        Annotation, null=True, blank=True, on_delete=models.CASCADE, related_name="reviews"
    )
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    # A missing one: where, what (label) and, optionally, the region it should cover.
    sample = models.ForeignKey(
        "projects.Sample", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    frame = models.PositiveIntegerField(null=True, blank=True)
    label = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The reviewed run's attempt the verdict was given on.
    attempt = models.PositiveIntegerField(default=1)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "id"]
        indexes = [models.Index(fields=["task", "stage_key"])]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "review_stage"],
                condition=models.Q(annotation__isnull=False),
                name="annotation_review_once_per_stage",
            )
        ]

    def __str__(self) -> str:
        what = f"annotation {self.annotation_id}" if self.annotation_id else f"missing {self.label}"
        return f"{what} of {self.task_id}/{self.stage_key}: {self.verdict}"
