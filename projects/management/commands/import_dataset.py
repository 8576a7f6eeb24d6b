from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from core.access import SYSTEM
from core.exceptions import ApplicationError
from projects.dataset_services import dataset_import_run, dataset_import_start, detect_format
from projects.models import DatasetFormat, ImportStatus, Project


class Command(BaseCommand):
    help = (
        "Import a file or folder of episodes or images into a project as one dataset. "
        "Runs here and shows progress; --background queues it for an RQ worker instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project", required=True, help="The project's slug (or id).")
        parser.add_argument("--format", choices=DatasetFormat.values, help="Default: detected.")
        parser.add_argument("--name", help="Default: the folder's or file's name.")
        parser.add_argument("--fps", type=float, help="Frame rate when the files do not say.")
        parser.add_argument(
            "--swap-rb",
            choices=["auto", "yes", "no"],
            default="auto",
            help="Swap red/blue of JPEG-compressed ALOHA frames (auto: yes, as ACT writes BGR).",
        )
        parser.add_argument(
            "--flip-cameras",
            action="store_true",
            help="robomimic/robosuite: turn camera images stored upside down right side up.",
        )
        parser.add_argument("--background", action="store_true", help="Queue for a worker.")

    def handle(
        self, *args, path, project, format, name, fps, swap_rb, flip_cameras, background, **options
    ):
        source = Path(path).expanduser().resolve()
        if not source.exists():
            raise CommandError(f"{source} does not exist.")
        lookup = Q(slug=project) | (Q(pk=int(project)) if project.isdigit() else Q())
        target = Project.objects.filter(lookup).first()
        if target is None:
            raise CommandError(f"No project {project!r}.")
        try:
            format = format or detect_format(source)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        import_options = {}
        if fps:
            import_options["fps"] = fps
        if swap_rb != "auto":
            import_options["swap_rb"] = swap_rb == "yes"
        if flip_cameras:
            import_options["flip_cameras"] = True
        try:
            dataset = dataset_import_start(
                actor=SYSTEM,
                project=target,
                name=name or source.stem,
                format=format,
                source_path=source,
                options=import_options,
                background=background,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if background:
            self.stdout.write(f"Queued dataset {dataset.pk} ({format}) as job {dataset.job_id}.")
            return
        self.stdout.write(f"Importing {source} as {format} dataset {dataset.pk}…")
        dataset = dataset_import_run(dataset_id=dataset.pk)
        if dataset.status != ImportStatus.FINISHED:
            raise CommandError(f"Import failed: {dataset.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Dataset {dataset.pk} “{dataset.name}”: {dataset.num_samples} samples, "
                f"{dataset.total_frames} frames, {dataset.duration_seconds:.1f} s, "
                f"{dataset.size_bytes / 1e6:.1f} MB."
            )
        )
