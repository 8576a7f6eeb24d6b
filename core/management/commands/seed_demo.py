from django.core.management.base import BaseCommand

from core.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = "Create the demo users and project (idempotent: safe to run again)."

    def handle(self, *args, **options):
        created = seed_demo()
        made = ", ".join(f"{len(v)} {k}" for k, v in created.items() if v) or "nothing new"
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({made})."))
        names = ", ".join(u.username for u in DEMO_USERS)
        self.stdout.write(f"Demo users (password “{DEMO_PASSWORD}”): {names}")
