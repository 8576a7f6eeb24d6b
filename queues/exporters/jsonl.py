"""One line per task: the delivery payload shape (task, blueprint, stages, annotations).

Streams: tasks come in chunks over a server-side cursor (``base.stream_tasks``), never all
in memory, and no samples are read (a task line does not name them)."""

import json
from typing import TYPE_CHECKING, cast

from django.core.serializers.json import DjangoJSONEncoder

from tasks.services import delivery_payload

from .base import ExportError, stream_tasks

if TYPE_CHECKING:
    from tasks.models import Task

FILE = "tasks.jsonl"
STREAMS = True


def write(ctx, out) -> None:
    n = annotations = 0
    total = max(ctx.total, 1)
    with (out / FILE).open("w") as fh:
        for chunk in stream_tasks(ctx):
            lines = []
            for task in chunk.tasks:
                mine = chunk.annotations[task.pk]
                annotations += len(mine)
                # A TaskRow has every attribute delivery_payload reads of a Task.
                payload = delivery_payload(cast("Task", task), mine)
                payload["datasets"] = chunk.datasets[task.pk]
                payload["stages"] = [
                    {
                        "key": r.stage_key,
                        "kind": r.kind,
                        "status": r.status,
                        "attempt": r.attempt,
                        "assignee": r.assignee,
                        "routed_to": r.routed_to or None,
                    }
                    for r in chunk.runs[task.pk]
                ]
                lines.append(json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True) + "\n")
            fh.writelines(lines)
            n += len(chunk.tasks)
            ctx.progress(min(n / total, 1.0), chunk.tasks[-1].name)
    ctx.count("tasks", n)
    ctx.count("annotations", annotations)


def validate(ctx, out) -> None:
    # Against the tasks written: the stream is not the snapshot ``ctx.total`` was counted in
    # (a task finished meanwhile is written or not, never a reason to fail).
    expected = len(ctx.task_ids)
    count = 0
    with (out / FILE).open() as fh:
        for count, line in enumerate(fh, start=1):
            record = json.loads(line)
            if not {"task", "annotations", "stages"} <= set(record):
                raise ExportError(f"{FILE} line {count} lacks task, annotations or stages")
    if count != expected:
        raise ExportError(f"{FILE} has {count} lines for {expected} tasks")
