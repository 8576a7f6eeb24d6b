"""Export formats: each module has ``write(ctx, out)`` and ``validate(ctx, out)``."""

from .base import ExportContext, ExportError

WRITERS = ("lerobot", "hdf5", "robomimic", "jsonl", "coco")


def get_writer(fmt: str):
    """The format's module, imported alone (a JSONL worker need not load pyarrow or h5py)."""
    import importlib

    if fmt not in WRITERS:
        raise KeyError(fmt)
    return importlib.import_module(f"{__name__}.{fmt}")


__all__ = ["WRITERS", "ExportContext", "ExportError", "get_writer"]
