"""The project parts of the role dashboard at ``/``: a card per managed project
(completion, ETA, quality, alerts) and, for administrators, queue health."""


def project_sections(*, user) -> dict:
    return {}
