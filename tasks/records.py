"""The one dictionary form of an annotation: what deliveries, the API, and every exporter
write (each may add fields of its own around it, never a different shape)."""

from __future__ import annotations

from typing import Any

from .models import Annotation


def annotation_record(a: Annotation) -> dict[str, Any]:
    return {
        "id": a.pk,
        "stage": a.stage_key,
        "replica": a.replica,
        "sample": a.sample_id,
        "label": a.label,
        "kind": a.kind,
        "data": a.data,
        "attributes": a.attributes,
        "version": a.version,
        "invalid": a.invalid,
        "invalid_reason": a.invalid_reason,
        "source": a.source,
        "source_detail": a.source_detail,
        "track": a.track or None,
    }
