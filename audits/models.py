"""Review decisions, audits and the measurements quality figures are made of (DESIGN.md §5–6).

Quality figures are aggregates over these tables (``audits.selectors``); whatever needs
Python to measure (IoU, Krippendorff's alpha, required attributes) is measured once when the
work is done and stored here, so reading the figures is one aggregate query each.
"""

from django.conf import settings
from django.db import models


class ReviewOutcome(models.Model):
    """One decision on one annotate run: a review stage approving or rejecting it, or a
    standard audit accepting or rejecting it. ``first`` marks the first decision on the
    run's first attempt: the first-pass rate is the share of those that accepted."""

    class Source(models.TextChoices):
        REVIEW = "review", "Review"
        AUDIT = "audit", "Standard audit"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="outcomes")
    stage_key = models.CharField(max_length=64)
    replica = models.PositiveSmallIntegerField(default=0)
    attempt = models.PositiveIntegerField()
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    accepted = models.BooleanField()
    first = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "id"]
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self) -> str:
        verdict = "accepted" if self.accepted else "rejected"
        return f"{self.task_id}/{self.stage_key} attempt {self.attempt} {verdict}"


class AgreementScore(models.Model):
    """Agreement of two annotators on the same samples of a consensus stage, per measure:
    box IoU, temporal IoU of segments, Krippendorff's alpha of classifications."""

    class Measure(models.TextChoices):
        BOX = "box_iou", "Box IoU"
        SEGMENT = "segment_iou", "Temporal IoU"
        CLASS = "class_alpha", "Krippendorff's alpha"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="agreements")
    stage_key = models.CharField(max_length=64)
    measure = models.CharField(max_length=20, choices=Measure.choices)
    annotator_a = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    annotator_b = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "id"]
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self) -> str:
        return f"{self.task_id}/{self.stage_key} {self.measure} {self.score:.3f}"


class Audit(models.Model):
    """An auditor's check of one delivered unit: the whole task (task-level delivery) or
    one delivered stage (stage-level delivery, ``stage_key`` set). All audits of a unit are
    kept; the latest completed one counts."""

    class Kind(models.TextChoices):
        STANDARD = "standard", "Standard"
        FIXLESS = "fixless", "Fixless"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"

    class Decision(models.TextChoices):
        NONE = "", "—"
        ACCEPT = "accept", "Accepted"
        REJECT = "reject", "Rejected"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="audits")
    stage_key = models.CharField(max_length=64, blank=True)
    # The unit's attempt when audited (a rework is a new unit to audit).
    attempt = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    # A standard audit that edited annotations before accepting (delivered again, marked).
    fixed = models.BooleanField(default=False)
    sampled = models.BooleanField(default=False)  # drawn by audit sampling (Audit next)
    # The unit's latest completed audit: the one whose findings count (kept in step).
    current = models.BooleanField(default=False)
    auditor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The valid annotations of the unit when the audit completed (accuracy's denominator).
    annotation_count = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "status", "completed_at"]),
            models.Index(fields=["task", "stage_key"]),
        ]

    def __str__(self) -> str:
        unit = f"{self.task_id}/{self.stage_key}" if self.stage_key else f"{self.task_id}"
        return f"{self.get_kind_display()} audit #{self.pk} of {unit}"


class AuditedWork(models.Model):
    """What a completed audit looked at, per stage and annotator: how many valid annotations
    (accuracy's denominator, grouped by stage and annotator without reading annotations)."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="work")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="+")
    stage_key = models.CharField(max_length=64)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    annotations = models.PositiveIntegerField(default=0)
    current = models.BooleanField(default=True)  # its audit is the unit's current one
    completed_at = models.DateTimeField()

    class Meta:
        ordering = ["audit", "id"]
        indexes = [models.Index(fields=["project", "current", "completed_at"])]

    def __str__(self) -> str:
        return f"{self.annotations} annotations of {self.stage_key} in audit {self.audit_id}"


class AuditFinding(models.Model):
    """One feedback item of an audit. Only errors count against accuracy, and only once
    accepted by the annotating side or upheld when the auditor settles a dispute."""

    class Type(models.TextChoices):
        ERROR = "error", "Error"
        FLAG = "flag", "Flag"
        CONFIRMATION = "confirmation", "Confirmation"
        COMMENT = "comment", "Comment"

    class Category(models.TextChoices):
        MISSING = "missing", "Missing"
        EXTRANEOUS = "extraneous", "Extraneous"
        WRONG_CLASS = "wrong_class", "Wrong class"
        GEOMETRY = "geometry", "Geometry"
        ATTRIBUTE = "attribute", "Attribute"
        OTHER = "other", "Other"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        DISPUTED = "disputed", "Disputed"
        SETTLED = "settled", "Settled"

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="findings")
    # Denormalised from the audit and the work, so figures group without joins.
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="+")
    stage_key = models.CharField(max_length=64, blank=True)
    # Whose work it concerns: the annotation's author, else the unit's annotator.
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    type = models.CharField(max_length=15, choices=Type.choices)
    category = models.CharField(max_length=15, choices=Category.choices, default=Category.OTHER)
    annotation = models.ForeignKey(
        "tasks.Annotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attribute = models.CharField(max_length=64, blank=True)
    sample = models.ForeignKey(
        "projects.Sample", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    frame_start = models.PositiveIntegerField(null=True, blank=True)
    frame_end = models.PositiveIntegerField(null=True, blank=True)
    note = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    # Set when settled: True keeps the finding (an error then counts), False withdraws it.
    upheld = models.BooleanField(null=True, blank=True)
    # Counts against accuracy: an error accepted, or settled and upheld (kept in step) …
    counts = models.BooleanField(default=False)
    # … while its audit is the unit's current one (kept in step when a newer audit completes).
    current = models.BooleanField(default=False)
    response = models.TextField(blank=True)  # the annotating side's words when disputing
    resolution = models.TextField(blank=True)  # the auditor's words when settling
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["audit", "id"]
        indexes = [models.Index(fields=["project", "current", "type"])]

    def __str__(self) -> str:
        return f"{self.get_type_display()} ({self.get_category_display()}) in audit {self.audit_id}"


class AuditFix(models.Model):
    """An annotation a standard audit changed: created, edited or deleted, before and after."""

    class Action(models.TextChoices):
        CREATE = "create", "Added"
        UPDATE = "update", "Edited"
        DELETE = "delete", "Deleted"

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="fixes")
    annotation = models.ForeignKey(
        "tasks.Annotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["audit", "id"]

    def __str__(self) -> str:
        return (
            f"{self.get_action_display()} annotation {self.annotation_id} in audit {self.audit_id}"
        )


class QualityDay(models.Model):
    """The sums behind the quality figures for one day (current time zone), stage and person,
    rolled up from the measurement tables above (``audits.rollups``), so that reading the
    figures is one grouped query however many rows were measured.

    ``scope`` says what a row holds: 0 the measurements of (stage, person); 1 the day's
    distinct current audits (stage "", person NULL); 2 those per stage (person NULL); 3 those
    per person (stage ""). Agreement scores are credited to ``annotator_a`` in ``pairs`` /
    ``score_sum`` (totals read these) and to ``annotator_b`` in ``partner_*``; ``self_*``
    holds the pairs whose two people are the same one."""

    MEASURED, AUDITS, STAGE_AUDITS, PERSON_AUDITS = 0, 1, 2, 3

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    scope = models.PositiveSmallIntegerField(default=MEASURED)
    stage_key = models.CharField(max_length=64, blank=True)
    # SET_NULL as on the measurement rows: a deleted user's sums move to "nobody", as a
    # rebuild would put them.
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed = models.PositiveIntegerField(default=0)
    first_pass = models.PositiveIntegerField(default=0)
    units = models.PositiveIntegerField(default=0)  # AuditedWork rows (audit × stage × person)
    audited_annotations = models.PositiveIntegerField(default=0)
    audits = models.PositiveIntegerField(default=0)  # distinct audits (scopes 1–3)
    errors = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    category_missing = models.PositiveIntegerField(default=0)
    category_extraneous = models.PositiveIntegerField(default=0)
    category_wrong_class = models.PositiveIntegerField(default=0)
    category_geometry = models.PositiveIntegerField(default=0)
    category_attribute = models.PositiveIntegerField(default=0)
    category_other = models.PositiveIntegerField(default=0)
    pairs = models.PositiveIntegerField(default=0)
    score_sum = models.FloatField(default=0.0)
    partner_pairs = models.PositiveIntegerField(default=0)
    partner_score_sum = models.FloatField(default=0.0)
    self_pairs = models.PositiveIntegerField(default=0)
    self_score_sum = models.FloatField(default=0.0)
    samples_total = models.PositiveIntegerField(default=0)
    samples_complete = models.PositiveIntegerField(default=0)
    qc_flags = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "day", "id"]
        indexes = [models.Index(fields=["project", "day"])]

    def __str__(self) -> str:
        return f"{self.project_id} {self.day} {self.stage_key or '—'} {self.person_id}"


class QualityDirty(models.Model):
    """A day of a project whose QualityDay rows must be rebuilt before the next read; a NULL
    ``day`` means the whole project."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    day = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "day"], name="audits_qualitydirty_day"),
            models.UniqueConstraint(
                fields=["project"],
                condition=models.Q(day__isnull=True),
                name="audits_qualitydirty_all",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.day or 'all'}"
