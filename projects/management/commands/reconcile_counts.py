from django.core.management.base import BaseCommand

from projects.counts import kept, reconcile


class Command(BaseCommand):
    help = (
        "Recompute the dashboards' kept task and stage-run counts (PostgreSQL) from the tasks "
        "and runs, and say what was wrong. Safe while people work: each project is recomputed "
        "in one statement per table under its lock. Default: every project."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", type=int, action="append", help="A project id (repeat).")

    def handle(self, *args, **options):
        if not kept():
            self.stdout.write("This database keeps no counts (PostgreSQL only): nothing to do.")
            return
        corrections = reconcile(options["project"])
        for c in corrections:
            self.stdout.write(f"{c.table} {c.key}: {c.change:+}")
        self.stdout.write(
            f"{len(corrections)} count(s) corrected." if corrections else "Every count was right."
        )
