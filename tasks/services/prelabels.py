"""Pre-labels: existing labels imported into a task's stage as annotations marked
pre-labelled (``Annotation.source``), for the annotator to accept, edit or delete.

Three inputs, each as our own exporters write it: the JSONL export (a task per line,
its ``annotations``), COCO boxes (``annotations.json``: category names are the classes;
an image names its sample, camera, frame and task, or its ``file_name`` does), and the
LeRobot export's ``meta/stagecraft_annotations.jsonl`` (alone, or in a zip of the
dataset). Annotations find their task by its unique id or id in the project (or all go
to one chosen task), their sample by id among the task's samples, else by name.

A file that cannot be read is refused whole with the line or field at fault; annotations
that do not fit (unknown label, frame past the sample's end, a submitted stage…) are
skipped and counted with their reason. What fits is created in one transaction, with a
``prelabels_imported`` TaskEvent per task and stage, so nothing is ever half-imported.

An import runs as a job; its state (queued, started, finished with its summary, or failed
with its error) is a small JSON object beside the upload in the data storage
(``prelabels/<project>/<id>.json`` and ``.upload``, core/objectstore.py), so the worker that
imports and the web server that shows the state need not share a disk. Import ids begin with
the time, so their keys sort oldest first.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
import uuid
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import objectstore
from core.access import actor_user
from core.exceptions import ApplicationError

from ..models import Annotation, StageRun, Task, TaskEvent
from ..validation import clean_attributes, clean_data
from .access import annotating_run
from .base import lock_task, spec_for
from .sampling import stage_samples

FORMATS = {
    "jsonl": "Stagecraft JSONL export (tasks.jsonl)",
    "coco": "COCO boxes (annotations.json)",
    "lerobot": "LeRobot export's meta/stagecraft_annotations.jsonl (or the dataset as a zip)",
}
NAMES = {"jsonl": "JSONL", "coco": "COCO", "lerobot": "LeRobot"}
MAX_BYTES = 200 * 1024 * 1024
SIDECAR = "meta/stagecraft_annotations.jsonl"
EXAMPLES = 20  # skipped annotations listed one by one in a summary (all are counted)
OPEN_RUN = {StageRun.Status.BLOCKED, StageRun.Status.READY, StageRun.Status.IN_PROGRESS}
COCO_NAME = re.compile(r"(?:^|/)(\d+)_(.+)_(\d+)\.\w+$")  # our COCO export's file names


@dataclass
class Candidate:
    where: str
    label: Any
    kind: Any
    data: Any
    attributes: Any
    stage: Any = None
    task: Any = None
    unique_id: Any = None
    sample: Any = None
    sample_name: Any = None


# --- reading the three formats ---------------------------------------------------------------


def _lines(raw: bytes, name: str):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApplicationError(f"{name} is not UTF-8 text (byte {exc.start}).") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ApplicationError(f"{name} line {number} is not JSON: {exc.msg}.") from exc
        if not isinstance(record, dict):
            raise ApplicationError(f"{name} line {number} is not a JSON object.")
        yield number, record


def _annotation(record: dict, where: str, **refs: Any) -> Candidate:
    if not isinstance(record, dict):
        raise ApplicationError(f"{where} is not an object.")
    if not isinstance(record.get("label"), str) or "data" not in record:
        raise ApplicationError(f"{where} lacks a label or data.")
    return Candidate(
        where=where,
        label=record["label"],
        kind=record.get("kind"),
        data=record["data"],
        attributes=record.get("attributes"),
        stage=record.get("stage"),
        sample=record.get("sample"),
        # A task-level annotation (sample null) stays one, whatever episode it is listed in.
        sample_name=record.get("sample_name") if record.get("sample") is not None else None,
        **refs,
    )


def read_jsonl(raw: bytes) -> list[Candidate]:
    found = []
    for number, record in _lines(raw, "The JSONL file"):
        annotations = record.get("annotations")
        if not isinstance(annotations, list):
            raise ApplicationError(f"Line {number} has no annotations list (is it our export?).")
        for i, a in enumerate(annotations):
            found.append(
                _annotation(
                    a,
                    f"line {number}, annotation {i + 1}",
                    task=record.get("task"),
                    unique_id=record.get("unique_id"),
                )
            )
    return found


def read_lerobot(raw: bytes) -> list[Candidate]:
    if raw[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                names = [n for n in archive.namelist() if n.endswith(SIDECAR)]
                if not names:
                    raise ApplicationError(f"The zip has no {SIDECAR}.")
                raw = archive.read(min(names, key=len))
        except (zipfile.BadZipFile, OSError) as exc:
            raise ApplicationError(f"The zip cannot be read: {exc}.") from exc
    return [
        _annotation(record, f"line {number}", task=record.get("task"))
        for number, record in _lines(raw, SIDECAR)
    ]


def read_coco(raw: bytes) -> list[Candidate]:
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"The COCO file is not JSON: {exc}.") from exc
    if not isinstance(document, dict) or not all(
        isinstance(document.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise ApplicationError("The COCO file needs images, annotations and categories lists.")
    try:
        categories = {c["id"]: str(c["name"]) for c in document["categories"]}
        images = {image["id"]: image for image in document["images"]}
    except (KeyError, TypeError) as exc:
        raise ApplicationError(
            "Every COCO category needs an id and a name, every image an id."
        ) from exc
    found = []
    for i, a in enumerate(document["annotations"]):
        where = f"annotation {a.get('id', i + 1) if isinstance(a, dict) else i + 1}"
        if not isinstance(a, dict) or a.get("image_id") not in images:
            raise ApplicationError(f"COCO {where} points at no image.")
        if a.get("category_id") not in categories:
            raise ApplicationError(f"COCO {where} points at no category.")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ApplicationError(f"COCO {where}: bbox is [x, y, width, height].")
        image = images[a["image_id"]]
        sample, camera, frame = image.get("sample"), image.get("camera"), image.get("frame")
        match = COCO_NAME.search(str(image.get("file_name", "")))
        sample_id = int(match.group(1)) if match else None
        if match and camera is None:
            camera, frame = match.group(2), int(match.group(3))
        if sample is None and sample_id is None:
            raise ApplicationError(
                f"COCO image {image['id']} names no sample (a 'sample' field, or a file name "
                "like our export's <sample id>_<camera>_<frame>.jpg)."
            )
        data = {"frame": frame, "x": bbox[0], "y": bbox[1], "w": bbox[2], "h": bbox[3]}
        if camera is not None:
            data["camera"] = camera
        found.append(
            Candidate(
                where=where,
                label=categories[a["category_id"]],
                kind="box",
                data=data,
                attributes=a.get("attributes"),
                task=image.get("task"),
                sample=sample_id,
                sample_name=sample,
            )
        )
    return found


READERS = {"jsonl": read_jsonl, "coco": read_coco, "lerobot": read_lerobot}


# --- importing ---------------------------------------------------------------------------------


class _Skips:
    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()
        self.unknown_labels: Counter[str] = Counter()
        self.examples: list[str] = []

    def add(self, candidate: Candidate, reason: str) -> None:
        self.reasons[reason] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{candidate.where}: {reason}")


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _targets(project, candidates: list[Candidate], task_id: int | None) -> dict[int, Task]:
    """The project's live tasks the candidates name (or the one chosen), locked."""
    live = Task.objects.filter(project=project)  # the default manager: live tasks only
    if task_id is not None:
        ids = {task_id}
    else:
        unique = {c.unique_id for c in candidates if isinstance(c.unique_id, str) and c.unique_id}
        by_unique = dict(
            live.filter(unique_id__in=unique).values_list("unique_id", "pk") if unique else []
        )
        for c in candidates:
            if isinstance(c.unique_id, str) and c.unique_id in by_unique:
                c.task = by_unique[c.unique_id]
        ids = {t for c in candidates if (t := _as_int(c.task)) is not None}
    tasks = (
        live.filter(pk__in=ids)
        .select_related("blueprint", "project")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    return {t.pk: t for t in tasks}


def _samples(tasks: dict[int, Task]) -> dict[int, list]:
    from projects.models import Sample

    found: dict[int, list] = defaultdict(list)
    rows = (
        Sample.objects.filter(dataset__tasks__in=list(tasks))
        .annotate(task_ref=F("dataset__tasks"))
        .only("pk", "name", "num_frames", "cameras", "dataset_id", "index")
        .order_by("dataset__name", "index")
    )
    for sample in rows:
        found[sample.task_ref].append(sample)
    return found


@transaction.atomic
def prelabels_import(
    *,
    actor,
    project,
    format: str,
    raw: bytes,
    stage: str = "",
    task_id: int | None = None,
    detail: str = "",
) -> dict[str, Any]:
    """Create the file's annotations as pre-labels; the summary of what was created and
    what was skipped, and why. An unreadable file raises ApplicationError (nothing made)."""
    reader = READERS.get(format)
    if reader is None:
        raise ApplicationError(f"Unknown format “{format}”.", field="format")
    try:
        candidates = reader(raw)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # Values of the wrong type where the format has ids, lists or objects.
        raise ApplicationError(
            f"The file is not laid out as {FORMATS[format]} ({type(exc).__name__}: {exc})."
        ) from exc
    detail = (detail or f"{NAMES[format]} import")[:200]
    skips = _Skips()
    tasks = _targets(project, candidates, task_id)
    if task_id is not None and task_id not in tasks:
        raise ApplicationError("That task is not one of the project's.", field="task")
    samples = _samples(tasks)
    runs: dict[tuple[int, str], list[tuple[int, str]]] = defaultdict(list)
    for task_ref, key, replica, status in StageRun.objects.filter(task__in=list(tasks)).values_list(
        "task_id", "stage_key", "replica", "status"
    ):
        runs[task_ref, key].append((replica, status))
    existing: set[tuple] = {
        (a["task_id"], a["stage_key"], a["replica"], a["sample_id"], a["label"], _key(a["data"]))
        for a in Annotation.objects.filter(task__in=list(tasks)).values(
            "task_id", "stage_key", "replica", "sample_id", "label", "data"
        )
    }
    drawn: dict[tuple[int, str], set[int]] = {}
    rows: list[Annotation] = []
    made: Counter[tuple[int, str]] = Counter()
    for c in candidates:
        target = task_id if task_id is not None else _as_int(c.task)
        task = tasks.get(target) if target is not None else None
        if task is None:
            skips.add(c, "names no task of this project" if target is None
                      else f"task #{target} is not in this project")  # fmt: skip
            continue
        key = stage or c.stage
        spec = spec_for(task.blueprint)
        stage_obj = spec.by_key.get(key) if isinstance(key, str) else None
        if stage_obj is None or stage_obj.kind not in {"annotate", "consensus"}:
            skips.add(c, f"task #{task.pk} has no annotate stage “{key}”")
            continue
        if c.label not in stage_obj.classes:
            skips.unknown_labels[str(c.label)] += 1
            skips.add(c, f"label “{c.label}” is not in stage “{key}”'s taxonomy")
            continue
        cls = spec.classes[c.label]
        if c.kind is not None and c.kind != cls.kind:
            skips.add(c, f"{c.label} is a {cls.kind}, not a {c.kind}")
            continue
        stage_runs = runs.get((task.pk, key)) or [(0, StageRun.Status.BLOCKED)]
        if any(status not in OPEN_RUN for _, status in stage_runs):
            skips.add(c, f"stage “{key}” of task #{task.pk} is already submitted")
            continue
        sample = None
        if c.sample is not None or c.sample_name is not None:
            mine = samples.get(task.pk, [])
            sample = next((s for s in mine if s.pk == _as_int(c.sample)), None) or next(
                (s for s in mine if c.sample_name is not None and s.name == c.sample_name), None
            )
            if sample is None:
                name = c.sample_name or f"#{c.sample}"
                skips.add(c, f"sample {name} is not one of task #{task.pk}'s samples")
                continue
            if stage_obj.params.sampling is not None:
                if (task.pk, key) not in drawn:
                    chosen = stage_samples(task=task, stage=stage_obj, samples=mine)
                    drawn[task.pk, key] = {s.pk for s in chosen}
                if sample.pk not in drawn[task.pk, key]:
                    skips.add(c, f"{sample.name} is not among the samples “{key}” annotates")
                    continue
        try:
            data = clean_data(cls, c.data, sample)
            attributes = clean_attributes(cls, c.attributes)
        except ApplicationError as exc:
            skips.add(c, f"{exc.field or 'data'}: {exc.message}")
            continue
        for replica, _ in stage_runs:
            ident = (task.pk, key, replica, getattr(sample, "pk", None), c.label, _key(data))
            if ident in existing:
                skips.add(c, "already there (the same label and geometry)")
                continue
            existing.add(ident)
            rows.append(
                Annotation(
                    task=task,
                    stage_key=key,
                    replica=replica,
                    sample=sample,
                    label=c.label,
                    kind=cls.kind,
                    data=data,
                    attributes=attributes,
                    source=Annotation.Source.PRELABEL,
                    source_detail=detail,
                )
            )
            made[task.pk, key] += 1
    Annotation.objects.bulk_create(rows, batch_size=1000)
    TaskEvent.objects.bulk_create(
        TaskEvent(
            task_id=task_ref,
            kind="prelabels_imported",
            actor=actor_user(actor),
            stage_key=key,
            data={"count": n, "format": format, "source": detail},
        )
        for (task_ref, key), n in sorted(made.items())
    )
    return {
        "created": len(rows),
        "skipped": sum(skips.reasons.values()),
        "tasks": len({t for t, _ in made}),
        "reasons": dict(skips.reasons.most_common()),
        "unknown_labels": dict(skips.unknown_labels.most_common()),
        "examples": skips.examples,
        "source_detail": detail,
    }


def _key(data: Any) -> str:
    """The same geometry whichever way its numbers are written (COCO writes 10.0 for 10)."""
    return json.dumps(_floats(data), sort_keys=True)


def _floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# --- the import as a job: its state beside its upload ------------------------------------------


def _prefix(project_id: int) -> str:
    return f"prelabels/{int(project_id)}"


def _new_id() -> str:
    """32 hex digits: the time in microseconds, then random ones (keys sort by time)."""
    return f"{time.time_ns() // 1000:014x}{uuid.uuid4().hex[:18]}"


def prelabel_files_delete(*, project_id: int) -> None:
    """Every import state and upload of a project (after the project is deleted)."""
    objectstore.delete_prefix(_prefix(project_id))


def _valid_id(import_id: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{32}", import_id or ""))


def _write(project_id: int, import_id: str, record: dict) -> None:
    # One PUT (a rename on the local folder): readers never see half a record.
    data = json.dumps(record, sort_keys=True).encode()
    objectstore.put_bytes(data, f"{_prefix(project_id)}/{import_id}.json")


def _read(key: str) -> dict | None:
    try:
        with objectstore.open_read(key) as handle:
            record = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def prelabel_import_get(*, project, import_id: str) -> dict | None:
    """An import's state: status, what it was asked, and its summary or error."""
    if not _valid_id(import_id):
        return None
    return _read(f"{_prefix(project.pk)}/{import_id}.json")


def prelabel_import_list(*, project, limit: int = 10) -> list[dict]:
    """The project's latest imports, newest first."""
    keys = sorted(
        (key for key, _size in objectstore.list_keys(_prefix(project.pk)) if key.endswith(".json")),
        reverse=True,
    )
    found = []
    for key in keys[:limit]:
        record = _read(key)
        if record is not None:
            found.append(record)
    return found


def prelabel_import_start(
    *,
    actor,
    project,
    upload,
    format: str,
    stage: str = "",
    task_id: int | None = None,
    detail: str = "",
) -> dict:
    """Keep the upload and queue its import; the import's state (status ``queued``)."""
    from core.jobs import enqueue

    from ..jobs import import_prelabels_failed, import_prelabels_job

    if format not in FORMATS:
        raise ApplicationError(
            f"Unknown format “{format}” (formats: {', '.join(FORMATS)}).", field="format"
        )
    if upload is None:
        raise ApplicationError("Choose a file to import.", field="file")
    if upload.size > MAX_BYTES:
        raise ApplicationError(f"The file is larger than {MAX_BYTES // 2**20} MB.", field="file")
    if format == "coco" and not stage:
        raise ApplicationError("COCO boxes name no stage: choose one.", field="stage")
    if task_id is not None and not Task.objects.filter(project=project, pk=task_id).exists():
        raise ApplicationError("That task is not one of the project's.", field="task")
    import_id = _new_id()
    with tempfile.NamedTemporaryFile(prefix="stagecraft-prelabels-") as held:
        for chunk in upload.chunks():
            held.write(chunk)
        held.flush()
        objectstore.put_file(held.name, f"{_prefix(project.pk)}/{import_id}.upload")
    record = {
        "id": import_id,
        "project": project.pk,
        "status": "queued",
        "format": format,
        "stage": stage or None,
        "task": task_id,
        "source_detail": detail[:200],
        "file": str(getattr(upload, "name", ""))[:200],
        "actor": getattr(actor_user(actor), "pk", None),
        "created_at": timezone.now().isoformat(),
        "summary": None,
        "error": "",
    }
    _write(project.pk, import_id, record)
    enqueue(
        "imports",
        import_prelabels_job,
        project.pk,
        import_id,
        job_id=f"prelabels-{import_id}",
        on_failure=import_prelabels_failed,
    )
    return record


def prelabel_import_run(*, project_id: int, import_id: str) -> dict:
    """The job's work: import the upload, record the summary (or the error). Runs twice
    safely: a finished or failed import is left as it is."""
    from django.contrib.auth import get_user_model

    from projects.models import Project

    project = Project.objects.get(pk=project_id)
    record = prelabel_import_get(project=project, import_id=import_id)
    if record is None or record["status"] in {"finished", "failed"}:
        return record or {}
    record["status"] = "started"
    _write(project_id, import_id, record)
    upload = f"{_prefix(project_id)}/{import_id}.upload"
    actor_id = record.get("actor")
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        summary = prelabels_import(
            actor=actor,
            project=project,
            format=record["format"],
            raw=_read_upload(upload),
            stage=record.get("stage") or "",
            task_id=record.get("task"),
            detail=record.get("source_detail") or "",
        )
    except ApplicationError as exc:
        record.update(status="failed", error=exc.message)
    except OSError as exc:
        why = f": {exc.strerror}" if exc.strerror else ""
        record.update(status="failed", error=f"The uploaded file is gone{why}.")
    else:
        record.update(status="finished", summary=summary)
    record["finished_at"] = timezone.now().isoformat()
    _write(project_id, import_id, record)
    objectstore.delete(upload)
    return record


def _read_upload(key: str) -> bytes:
    with objectstore.open_read(key) as handle:
        return handle.read()


def prelabel_import_abandon(*, project_id: int, import_id: str, reason: str) -> None:
    """The job raised or its worker died: the import is failed (its transaction, if any,
    rolled back with it — nothing was created)."""
    from projects.models import Project

    project = Project.objects.filter(pk=project_id).first()
    record = prelabel_import_get(project=project, import_id=import_id) if project else None
    if record is None or record["status"] in {"finished", "failed"}:
        return
    record.update(status="failed", error=reason, finished_at=timezone.now().isoformat())
    _write(project_id, import_id, record)


# --- the annotator: accept or delete ----------------------------------------------------------


@transaction.atomic
def prelabels_resolve(
    *, actor, task: Task, stage: str, action: str, ids: list[int] | None = None
) -> dict[str, Any]:
    """Accept (they become the actor's own) or delete the stage's pre-labels not yet
    accepted: those of ``ids``, or all of them. One TaskEvent records which."""
    if action not in {"accept", "delete"}:
        raise ApplicationError("action is accept or delete.", field="action")
    if ids is not None and (
        not isinstance(ids, list) or not all(_as_int(i) is not None for i in ids)
    ):
        raise ApplicationError("ids is a list of annotation ids.", field="ids")
    task = lock_task(task.pk, actor)
    run = annotating_run(task, stage, actor)
    pending = Annotation.objects.filter(
        task=task, stage_key=stage, replica=run.replica, source=Annotation.Source.PRELABEL
    )
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    chosen = sorted(pending.values_list("pk", flat=True))
    if action == "accept":
        Annotation.objects.filter(pk__in=chosen).update(
            source=Annotation.Source.ACCEPTED,
            author=actor_user(actor),
            version=F("version") + 1,
            updated_at=timezone.now(),
        )
    else:
        Annotation.objects.filter(pk__in=chosen).delete()
    if chosen:
        TaskEvent.objects.create(
            task=task,
            kind=f"prelabels_{action}ed" if action == "accept" else "prelabels_deleted",
            actor=actor_user(actor),
            stage_key=stage,
            data={"count": len(chosen), "annotations": chosen[:1000]},
        )
    changed = (
        list(Annotation.objects.filter(pk__in=chosen).select_related("author"))
        if action == "accept"
        else []
    )
    return {"action": action, "count": len(chosen), "ids": chosen, "annotations": changed}


def prelabel_accept_on_edit(*, actor, annotation: Annotation) -> None:
    """Editing a pre-label accepts it (the caller saves the annotation)."""
    if annotation.source != Annotation.Source.PRELABEL:
        return
    annotation.source = Annotation.Source.ACCEPTED
    annotation.author = actor_user(actor)
    TaskEvent.objects.create(
        task_id=annotation.task_id,
        kind="prelabels_accepted",
        actor=actor_user(actor),
        stage_key=annotation.stage_key,
        data={"count": 1, "annotations": [annotation.pk], "by": "edit"},
    )


def unaccepted_prelabels(annotations: list[Annotation]) -> int:
    return sum(1 for a in annotations if a.source == Annotation.Source.PRELABEL)


def prelabel_deleted(*, actor, annotation: Annotation) -> None:
    """Deleting a pre-label one by one (the annotation's Delete) is recorded like Delete all."""
    if annotation.source != Annotation.Source.PRELABEL:
        return
    TaskEvent.objects.create(
        task_id=annotation.task_id,
        kind="prelabels_deleted",
        actor=actor_user(actor),
        stage_key=annotation.stage_key,
        data={"count": 1, "annotations": [annotation.pk]},
    )
