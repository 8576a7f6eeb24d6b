"""Every project's quality rollups start dirty: the first read (or ``manage.py
quality_rebuild``) builds them from the measurement rows already stored."""

from django.db import migrations


def mark_all(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    QualityDirty = apps.get_model("audits", "QualityDirty")
    QualityDirty.objects.bulk_create(
        [
            QualityDirty(project_id=pk, day=None)
            for pk in Project.objects.values_list("pk", flat=True)
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audits", "0002_qualityday_qualitydirty"),
        ("projects", "0004_dataset_resync_claim"),
    ]

    operations = [migrations.RunPython(mark_all, migrations.RunPython.noop)]
