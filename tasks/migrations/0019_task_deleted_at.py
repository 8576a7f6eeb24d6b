# Deleted tasks are hidden at once (Task.deleted_at, the default manager filters it) and purged
# by a job; a deleted task awaiting its purge no longer holds its unique id.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0018_annotation_track"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="deleted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RemoveConstraint(
            model_name="task",
            name="task_unique_id_per_project",
        ),
        migrations.AddConstraint(
            model_name="task",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    models.Q(("unique_id", ""), _negated=True), ("deleted_at__isnull", True)
                ),
                fields=("project", "unique_id"),
                name="task_unique_id_per_project",
            ),
        ),
    ]
