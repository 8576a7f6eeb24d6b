"""RQ entry points of the projects app: take ids, call a service."""

from .dataset_services import dataset_import_run


def import_dataset_job(dataset_id: int) -> str:
    dataset = dataset_import_run(dataset_id=dataset_id)
    return dataset.status if dataset else "skipped"


def import_dataset_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: the job raised, or its worker died mid-import."""
    from core.jobs import failure_reason

    from .dataset_services import dataset_import_abandon

    dataset_import_abandon(dataset_id=job.args[0], reason=failure_reason(exc_type))


def resync_dataset_job(dataset_id: int) -> dict:
    from .dataset_services import dataset_resync_run

    return dataset_resync_run(dataset_id=dataset_id)
