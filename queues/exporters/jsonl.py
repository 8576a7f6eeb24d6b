"""One line per task: the delivery payload shape (task, blueprint, stages, annotations)."""

import json

from django.core.serializers.json import DjangoJSONEncoder

from tasks.services import delivery_payload

from .base import ExportError

FILE = "tasks.jsonl"


def write(ctx, out) -> None:
    with (out / FILE).open("w") as fh:
        for n, task in enumerate(ctx.tasks):
            payload = delivery_payload(task, ctx.annotations[task.pk])
            payload["stages"] = [
                {
                    "key": r.stage_key,
                    "kind": r.kind,
                    "status": r.status,
                    "attempt": r.attempt,
                    "assignee": r.assignee.username if r.assignee else None,
                    "routed_to": r.routed_to or None,
                }
                for r in task.runs.all()
            ]
            fh.write(json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True) + "\n")
            ctx.progress((n + 1) / max(len(ctx.tasks), 1), task.name)
    ctx.count("tasks", len(ctx.tasks))
    ctx.count("annotations", sum(len(v) for v in ctx.annotations.values()))


def validate(ctx, out) -> None:
    lines = (out / FILE).read_text().splitlines()
    if len(lines) != len(ctx.tasks):
        raise ExportError(f"{FILE} has {len(lines)} lines for {len(ctx.tasks)} tasks")
    for number, line in enumerate(lines, start=1):
        record = json.loads(line)
        if not {"task", "annotations", "stages"} <= set(record):
            raise ExportError(f"{FILE} line {number} lacks task, annotations or stages")
