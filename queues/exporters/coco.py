"""COCO detection: the box annotations, with the frames they were drawn on as JPEG images."""

import json

from PIL import Image

from .base import ExportError

FILE = "annotations.json"


def write(ctx, out) -> None:
    images_dir = out / "images"
    images_dir.mkdir()
    images, annotations, categories = {}, [], {}
    for n, episode in enumerate(ctx.episodes):
        sample = episode.sample
        cameras = [c["name"] for c in sample.cameras]
        for a in episode.annotations:
            if a.kind != "box":
                continue
            camera = a.data.get("camera") or (cameras[0] if cameras else None)
            frame = int(a.data.get("frame", 0))
            if camera not in cameras or not 0 <= frame < (sample.num_frames or 0):
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
            category = categories.setdefault(a.label, {"id": len(categories) + 1, "name": a.label})
            x, y, w, h = (float(a.data[k]) for k in ("x", "y", "w", "h"))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": images[key]["id"],
                    "category_id": category["id"],
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "attributes": a.attributes,
                    "stagecraft_id": a.pk,
                }
            )
        ctx.progress((n + 1) / max(len(ctx.episodes), 1), sample.name)
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
