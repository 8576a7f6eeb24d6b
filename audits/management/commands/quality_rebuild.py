"""Rebuild the quality rollups (``audits.rollups``) of every project, or of one."""

from django.core.management.base import BaseCommand, CommandError

from audits.rollups import quality_rebuild
from projects.models import Project


class Command(BaseCommand):
    help = "Rebuild the per-day quality rollups of every project (or of --project SLUG)."

    def add_arguments(self, parser):
        parser.add_argument("--project", metavar="SLUG", help="only this project")

    def handle(self, *args, **options):
        projects = Project.objects.order_by("pk")
        if options["project"]:
            projects = projects.filter(slug=options["project"])
            if not projects.exists():
                raise CommandError(f"No project {options['project']!r}.")
        for project in projects.iterator():
            quality_rebuild(project)
            self.stdout.write(f"Rebuilt the quality rollups of {project.slug}.")
