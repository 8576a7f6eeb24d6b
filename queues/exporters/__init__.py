"""Export formats: each module has ``write(ctx, out)`` and ``validate(ctx, out)``."""

from .base import ExportContext, ExportError, collect

WRITERS = ("lerobot", "hdf5", "jsonl", "coco")


def get_writer(fmt: str):
    from . import coco, hdf5, jsonl, lerobot

    return {"lerobot": lerobot, "hdf5": hdf5, "jsonl": jsonl, "coco": coco}[fmt]


__all__ = ["WRITERS", "ExportContext", "ExportError", "collect", "get_writer"]
