from django.conf import settings as django_settings
from django.db import models


class Delivery(models.TextChoices):
    TASK = "task", "Per task"
    STAGE = "stage", "Per stage"


class Assignment(models.TextChoices):
    """How work reaches annotators (``Project.settings["assignment"]``, default pull)."""

    PULL = "pull", "Pull: people press Start next task"
    PUSH = "push", "Push: new work is assigned to people automatically"


class Role(models.TextChoices):
    MANAGER = "manager", "Manager"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.TASK)
    settings = models.JSONField(default=dict, blank=True)
    # Optimistic concurrency for the edit form: a stale form is refused, not applied.
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("annotate_project", "Annotate the project's tasks"),
            ("review_project", "Review and audit the project's tasks"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in a project. A user may hold several roles (one row each)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    skills = models.JSONField(default=list, blank=True)
    capacity = models.PositiveIntegerField(default=10, help_text="Most open stage runs at once.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "user", "role"], name="membership_unique_role"
            )
        ]
        indexes = [models.Index(fields=["user", "project"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} of {self.project}"


class DatasetFormat(models.TextChoices):
    HDF5 = "hdf5", "HDF5 episodes (ALOHA/ACT layout)"
    LEROBOT = "lerobot", "LeRobot dataset (v3.0, v2.1)"
    ROBOMIMIC = "robomimic", "robomimic / robosuite HDF5"
    ZARR = "zarr", "Zarr replay buffer (diffusion policy, UMI)"
    IMAGES = "images", "Folder of images (PNG/JPEG)"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    STARTED = "started", "Importing"
    FINISHED = "finished", "Ready"
    FAILED = "failed", "Failed"


class Dataset(models.Model):
    """A unit of data that tasks reference: one recording session, many samples.

    Its files live in the data storage once imported (projects/dataset_files.py): under
    ``datasets/<id>/`` on the local folder, under ``datasets/<id>/<files_version>/`` in a
    bucket. Task operations never delete datasets (tasks only link to them).
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    format = models.CharField(max_length=20, choices=DatasetFormat.choices)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    error = models.TextField(blank=True)
    # A server-side path the files were copied from; empty for uploads.
    source_path = models.CharField(max_length=1000, blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    # sha256 over the sorted per-file checksums: the same files imported twice match.
    checksum = models.CharField(max_length=64, blank=True, db_index=True)
    num_samples = models.PositiveIntegerField(default=0)
    total_frames = models.PositiveBigIntegerField(default=0)
    duration_seconds = models.FloatField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    imported_at = models.DateTimeField(null=True, blank=True)
    # Set while a re-sync runs (one at a time per dataset; a stale claim expires).
    resync_started_at = models.DateTimeField(null=True, blank=True)
    # The published version of its files in a bucket (a prefix under datasets/<id>/ whose
    # manifest was written); a re-sync publishes a new one and switches to it. Empty on the
    # local folder, where the files are datasets/<id>/ itself.
    files_version = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["project", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "checksum"],
                condition=models.Q(status="finished"),
                name="dataset_unique_files_per_project",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SampleKind(models.TextChoices):
    EPISODE = "episode", "Episode"
    IMAGE = "image", "Image"


class Sample(models.Model):
    """One episode (a repeat of a demonstration) or one image of a dataset.

    ``cameras``: ``[{"name", "height", "width", "encoding"}]``; ``arrays``:
    ``{"<name>": {"role": "state"|"action"|"other", "shape": [...], "dtype", "names"}}``;
    ``source``: where the bytes live, relative to the dataset folder, plus
    format-specific keys (HDF5 group, LeRobot row range and video offsets).
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="samples")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=10, choices=SampleKind.choices, default=SampleKind.EPISODE)
    num_frames = models.PositiveIntegerField()
    fps = models.FloatField(default=0)
    cameras = models.JSONField(default=list)
    arrays = models.JSONField(default=dict)
    source = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    # Set when a re-sync of the dataset changed this sample (frames, cameras, metadata).
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "index"], name="sample_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.dataset} / {self.name}"

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0

    def camera(self, name: str) -> dict | None:
        return next((c for c in self.cameras if c["name"] == name), None)


class Guideline(models.Model):
    """An annotation standard or piece of shared experience for a project's annotators,
    written by its reviewers and managers and shown beside the work in the workspace."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guidelines")
    title = models.CharField(max_length=200)
    body = models.TextField()
    author = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "title", "id"]

    def __str__(self) -> str:
        return self.title


class TaskCount(models.Model):
    """Kept task counts for the dashboards: a change of ``n`` tasks of one (project, status,
    blueprint version). PostgreSQL triggers on ``tasks_task`` append a row per key a
    statement changes (creation — COPY included —, status changes, deletion, soft deletion),
    so a project's counts are the sums of its rows: a read costs the rows appended since the
    last compaction, not the project's tasks (``projects.counts``). SQLite keeps none (its
    dashboards count the tasks)."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    status = models.CharField(max_length=20)
    blueprint_id = models.BigIntegerField()
    # The hour (UTC) the tasks are due in, None without a due date: overdue and due-soon
    # counts add whole hours and count only the tasks of the current hours.
    due_hour = models.DateTimeField(null=True)
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.project_id}/{self.status}/{self.blueprint_id}/{self.due_hour} {self.n:+}"


class TaskDueCount(models.Model):
    """Kept counts of the tasks due in each minute (UTC) per (project, status), like
    ``TaskCount``, appended by the same triggers: the overdue and due-soon figures add whole
    hours from ``TaskCount`` and read this table only for the two hours that ``now`` and
    ``now`` + 48 h cut (at most 120 minutes of rows), so they count no task whatever the
    number of tasks due in those hours. Tasks without a due date have no row."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    status = models.CharField(max_length=20)
    due_minute = models.DateTimeField()
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["project", "due_minute"], name="taskduecount_minute_idx")]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.status}/{self.due_minute} {self.n:+}"


class RunCount(models.Model):
    """Kept stage-run counts per (project, stage, kind, status), like ``TaskCount``: the
    triggers on ``tasks_stagerun`` append the changes (deleting tasks deletes their runs in
    the same transaction, which takes them out)."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    stage_key = models.CharField(max_length=64)
    kind = models.CharField(max_length=20)
    status = models.CharField(max_length=20)
    assignee_id = models.BigIntegerField(null=True)  # the per-annotator runs in progress
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.project_id}/{self.stage_key}/{self.status}/{self.assignee_id} {self.n:+}"
