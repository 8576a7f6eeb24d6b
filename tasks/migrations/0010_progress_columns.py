# The progress columns (projects.progress): a run's project, copied from its task, and when
# a task became done. Added nullable here, filled by 0011, the run's project made required
# (and the indexes built) by 0012: three transactions, as PostgreSQL wants.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0004_dataset_resync_claim"),
        ("tasks", "0009_progress_key_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="finished_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="stagerun",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
    ]
