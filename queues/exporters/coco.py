"""COCO detection: the box annotations, with the frames they were drawn on as JPEG images.

Category ids come from the taxonomy: every class of the exported tasks' blueprints is
listed, numbered in taxonomy order (a later blueprint version's new classes after the
earlier ones'), so an id means the same class in every export of the project, whether or
not this export has boxes of it. A label no taxonomy names (saved before a class was
removed) comes after them, by name."""

import json

from PIL import Image

from .base import ExportError, stream_episodes

FILE = "annotations.json"


def taxonomy_categories(ctx) -> dict[str, dict]:
    """Label → COCO category, from the taxonomies of the blueprints the tasks use (one
    query for the blueprint ids, one for their definitions)."""
    from blueprints.models import Blueprint

    used = ctx.source.order_by().values("blueprint_id").distinct()
    categories: dict[str, dict] = {}
    for definition in (
        Blueprint.objects.filter(pk__in=used)
        .order_by("name", "version", "pk")
        .values_list("definition", flat=True)
    ):
        for item in (definition or {}).get("taxonomy") or []:
            key = item.get("key") if isinstance(item, dict) else None
            if isinstance(key, str) and key not in categories:
                categories[key] = {
                    "id": len(categories) + 1,
                    "name": key,
                    "supercategory": str(item.get("kind") or ""),
                }
    return categories


def write(ctx, out) -> None:
    images_dir = out / "images"
    images_dir.mkdir()
    images: dict[tuple[int, str, int], dict] = {}
    annotations: list[dict] = []
    categories = taxonomy_categories(ctx)
    extra: dict[str, list[dict]] = {}  # labels no taxonomy names: numbered at the end
    for episode in stream_episodes(ctx):
        sample = episode.sample
        cameras = [c["name"] for c in sample.cameras]
        for a in episode.annotations:
            if a.kind != "box":
                continue
            camera = a.data.get("camera") or (cameras[0] if cameras else None)
            frame = int(a.data.get("frame", 0))
            if camera is None or camera not in cameras or not 0 <= frame < (sample.num_frames or 0):
                # Saved before cameras and frames were checked: no image to put it on.
                ctx.count("skipped_boxes_without_an_image")
                continue
            key = (sample.pk, camera, frame)
            if key not in images:
                array = episode.frames(camera, [frame])[0]
                name = f"{sample.pk}_{camera}_{frame:06d}.jpg"
                Image.fromarray(array).save(images_dir / name, "JPEG", quality=92)
                images[key] = {
                    "id": len(images) + 1,
                    "file_name": f"images/{name}",
                    "width": int(array.shape[1]),
                    "height": int(array.shape[0]),
                    "sample": sample.name,
                    "camera": camera,
                    "frame": frame,
                    "task": episode.task.pk,
                }
            x, y, w, h = (float(a.data[k]) for k in ("x", "y", "w", "h"))
            record = {
                "id": len(annotations) + 1,
                "image_id": images[key]["id"],
                "category_id": categories[a.label]["id"] if a.label in categories else None,
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": 0,
                "attributes": a.attributes,
                "stagecraft_id": a.pk,  # None on a track's interpolated frame
            }
            if a.track:
                # As CVAT's COCO writes a track: its id and whether this frame is a keyframe.
                record["attributes"] = {
                    **a.attributes,
                    "track_id": a.track,
                    "keyframe": a.pk is not None,
                }
            if a.label not in categories:
                extra.setdefault(a.label, []).append(record)
            annotations.append(record)
        ctx.progress(ctx.fraction(), sample.name)
    for label in sorted(extra):
        categories[label] = {"id": len(categories) + 1, "name": label, "supercategory": ""}
        for record in extra[label]:
            record["category_id"] = categories[label]["id"]
    document = {
        "info": {"description": f"Stagecraft export v{ctx.export.version}"},
        "images": list(images.values()),
        "annotations": annotations,
        "categories": list(categories.values()),
    }
    (out / FILE).write_text(json.dumps(document))
    ctx.count("images", len(images))
    ctx.count("annotations", len(annotations))


def validate(ctx, out) -> None:
    document = json.loads((out / FILE).read_text())
    ids = {image["id"] for image in document["images"]}
    for image in document["images"]:
        with Image.open(out / image["file_name"]) as im:
            if im.size != (image["width"], image["height"]):
                raise ExportError(f"{image['file_name']}: size differs from annotations.json")
    categories = {c["id"] for c in document["categories"]}
    for a in document["annotations"]:
        if a["image_id"] not in ids or a["category_id"] not in categories:
            raise ExportError(f"annotation {a['id']} points at a missing image or category")
