import shutil
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core import objectstore
from core.exceptions import ApplicationError
from projects.models import Project
from queues import services
from queues.models import ExportFormat, ExportStatus
from tasks.filters import FILTERS

# The API's task filter keys (tasks.filters, the one definition) as options: --status,
# --batch, --due-after…; the project is the command's argument and exports run in id order.
FILTER_OPTIONS = [key for key in FILTERS if key not in {"project", "ordering"}]


def _ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"--ids takes task ids separated by commas, not {text!r}.") from None
    if not ids or min(ids) < 1:
        raise CommandError("--ids takes task ids separated by commas.")
    return ids


class Command(BaseCommand):
    help = (
        "Export a project's finished tasks (review passed or later) as training data, all of "
        "them or those the API's task filter chooses (--status, --batch, --search, --assignee, "
        "--reviewer, --priority, --due-after, --due-before, --overdue) or --ids. Runs here; "
        "--background queues it for a worker instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="The project's slug.")
        parser.add_argument("--format", required=True, choices=ExportFormat.values)
        parser.add_argument("--incremental", action="store_true")
        parser.add_argument(
            "--clean",
            action="store_true",
            help="Drop invalid annotations, clip geometry, drop empty episodes.",
        )
        parser.add_argument(
            "--submit",
            action="store_true",
            help="Move exported review-passed tasks to data submitted.",
        )
        parser.add_argument("--all", action="store_true", help="Include unfinished tasks.")
        parser.add_argument(
            "--compress",
            choices=["none", "jpeg"],
            help="HDF5 camera images: lossless (default) or ALOHA's padded JPEG layout.",
        )
        for key in FILTER_OPTIONS:
            parser.add_argument(
                f"--{key.replace('_', '-')}",
                dest=f"filter_{key}",
                metavar="VALUE",
                help=f"Task filter '{key}', as the export API's filter takes it.",
            )
        parser.add_argument("--ids", type=_ids, help="Only these tasks (comma-separated ids).")
        parser.add_argument("--out", help="Also copy the published export to this folder.")
        parser.add_argument(
            "--as", dest="username", help="Run as this user (default: the first administrator)."
        )
        parser.add_argument("--background", action="store_true")

    def handle(
        self,
        *args,
        project,
        format,
        incremental,
        clean,
        submit,
        all,
        out,
        username,
        background,
        compress,
        ids,
        **options,
    ):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project {project!r}.")
        User = get_user_model()
        actor = (
            User.objects.filter(username=username).first()
            if username
            else User.objects.filter(is_superuser=True).order_by("pk").first()
        )
        if actor is None:
            raise CommandError("No such user (give --as USERNAME).")
        opts = {
            "incremental": incremental,
            "clean": clean,
            "submit": submit,
            "include_unfinished": all,
            "compress": compress,
        }
        chosen = {
            key: options[f"filter_{key}"]
            for key in FILTER_OPTIONS
            if options.get(f"filter_{key}") is not None
        }
        if chosen and ids:
            raise CommandError("Give task filters or --ids, not both.")
        try:
            export, created = services.export_start(
                actor=actor,
                project=target,
                format=format,
                # The API's filter: validated by the same code (a bad key or value is refused).
                filter=chosen if chosen else None,
                ids=ids,
                options={k: v for k, v in opts.items() if v},
                background=background,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if background or not created:
            self.stdout.write(f"Export v{export.version} ({export.status}) as job {export.job_id}.")
            return
        export = services.export_run(export_id=export.pk) or export
        if export.status != ExportStatus.FINISHED:
            raise CommandError(f"Export failed: {export.error}")
        if out:  # from a bucket: this machine's cached copy of the objects
            shutil.copytree(services.export_dir(export), Path(out), dirs_exist_ok=True)
            where = str(Path(out))
        elif objectstore.is_remote():
            where = f"storage key {services.export_key(export.path)}/ (--out to copy it here)"
        else:
            where = str(services.export_dir(export))
        counts = ", ".join(f"{v} {k}" for k, v in export.manifest["counts"].items())
        self.stdout.write(self.style.SUCCESS(f"Export v{export.version} ({format}): {counts}"))
        self.stdout.write(where)
