"""Queue actions are recorded in the audit trail (activity) only: the old log's rows are
copied there, then its table goes."""

from django.db import migrations

VERBS = {
    "pause": "queue.paused",
    "resume": "queue.resumed",
    "empty": "queue.emptied",
    "clean": "queue.cleaned",
    "retry-failed": "queue.retried_failed",
}


def copy_to_the_trail(apps, schema_editor):
    QueueAction = apps.get_model("queues", "QueueAction")
    Activity = apps.get_model("activity", "Activity")
    Activity.objects.bulk_create(
        [
            Activity(
                actor_id=row.actor_id,
                actor_name=row.actor.username if row.actor_id else "",
                verb=VERBS.get(row.action, f"queue.{row.action}"),
                target_type="queue",
                target_id=row.queue,
                target_label=row.queue,
                after={"count": row.count},
                created_at=row.created_at,
            )
            for row in QueueAction.objects.select_related("actor").iterator()
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("queues", "0002_queue_actions"),
        ("activity", "0001_activity"),
    ]

    operations = [
        migrations.RunPython(copy_to_the_trail, migrations.RunPython.noop),
        migrations.DeleteModel(name="QueueAction"),
    ]
