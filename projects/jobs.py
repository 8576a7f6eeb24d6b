"""RQ entry points of the projects app: take ids, call a service."""

from .dataset_services import dataset_import_run


def import_dataset_job(dataset_id: int) -> str:
    dataset = dataset_import_run(dataset_id=dataset_id)
    return dataset.status if dataset else "skipped"
