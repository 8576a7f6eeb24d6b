"""A folder of images (PNG/JPEG): one sample per image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .base import DataError, DatasetFormatReader, Progress, SampleSpec, natural_key, register

Image.MAX_IMAGE_PIXELS = 100_000_000  # refuse decompression bombs beyond ~100 MP


def open_image(path: Path, label) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DataError(label, f"not a readable PNG/JPEG image ({exc})") from exc
    return image


@register
class ImageFolderFormat(DatasetFormatReader):
    key = "images"
    suffixes = (".png", ".jpg", ".jpeg")

    def inspect(
        self, root: Path, files: list[Path], options: dict[str, Any], progress: Progress
    ) -> list[SampleSpec]:
        if not files:
            raise DataError(None, "No PNG or JPEG images found.")
        specs = []
        for n, relative in enumerate(sorted(files, key=natural_key)):
            progress(n, len(files), str(relative))
            image = open_image(root / relative, relative)
            if image.format not in {"PNG", "JPEG"}:
                raise DataError(relative, f"is {image.format}, not PNG or JPEG")
            specs.append(
                SampleSpec(
                    name=str(relative.with_suffix("")),
                    kind="image",
                    num_frames=1,
                    fps=0.0,
                    cameras=[
                        {
                            "name": "image",
                            "height": image.height,
                            "width": image.width,
                            "encoding": image.format.lower(),
                        }
                    ],
                    arrays={},
                    source={"file": str(relative)},
                    metadata={"mode": image.mode},
                )
            )
        return specs

    def read_frame(self, root: Path, sample, camera: str, index: int) -> np.ndarray:
        image = open_image(root / sample.source["file"], sample.source["file"])
        return np.asarray(image.convert("RGB"))

    def read_series(self, root: Path, sample) -> dict[str, np.ndarray]:
        return {}
