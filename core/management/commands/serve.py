"""``make run``: the development server together with one RQ worker.

Ctrl-C stops both. When Redis cannot be reached the server still starts, says so,
and jobs run synchronously in the web process (a banner on every page says so too).
"""

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.demo import DEMO_PASSWORD, DEMO_USERS
from core.jobs import redis_available


class Command(BaseCommand):
    help = "Serve Stagecraft on 127.0.0.1:8000 with one RQ worker (Ctrl-C stops both)."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="Do not start a worker.")
        parser.add_argument("--noreload", action="store_true", help="No auto-reloader.")

    def handle(self, *args, addrport, no_worker, noreload, **options):
        # Under the auto-reloader this command runs twice: once as the watching parent
        # (RUN_MAIN unset), once per reload as the serving child. Only the parent starts
        # the worker.
        worker = None
        if os.environ.get("RUN_MAIN") != "true":
            self._announce(addrport)
            if not no_worker:
                worker = self._start_worker()
        # Ctrl-C and SIGTERM stop the server even when started from a shell that ignores
        # SIGINT for background jobs; the reloader's child is killed as the parent unwinds.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            call_command("runserver", addrport, use_reloader=not noreload)
        finally:
            if worker is not None:
                self._stop_worker(worker)

    def _announce(self, addrport: str) -> None:
        names = ", ".join(u.username for u in DEMO_USERS)
        self.stdout.write(self.style.SUCCESS(f"Stagecraft on http://{addrport}/"))
        self.stdout.write(f"Demo users (password “{DEMO_PASSWORD}”): {names}")

    def _start_worker(self):
        if not redis_available(fresh=True):
            mode = (
                "jobs run synchronously in the web server"
                if settings.STAGECRAFT_JOBS_SYNC_FALLBACK
                else "background jobs will fail"
            )
            self.stderr.write(
                self.style.WARNING(
                    f"Redis is not reachable at {settings.REDIS_URL}: no worker started; "
                    f"{mode} (pages show a banner). Start Redis and restart to use a worker."
                )
            )
            return None
        queues = settings.RQ_QUEUE_NAMES
        from queues.jobs import schedule_export_cleanup

        schedule_export_cleanup(delay_hours=1)  # then daily: expired export files go
        from tasks.jobs import schedule_release_expired

        schedule_release_expired()  # then every minute: runs past their time limit
        self.stdout.write(f"RQ worker started for queues: {' '.join(queues)}")
        return subprocess.Popen(  # noqa: S603 — our own interpreter and manage.py
            [
                sys.executable,
                "manage.py",
                "rqworker",
                *queues,
                "--with-scheduler",
                "--worker-class",
                "queues.worker.PausableWorker",
            ],
            cwd=settings.BASE_DIR,
        )

    def _stop_worker(self, worker) -> None:
        if worker.poll() is None:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.stdout.write("RQ worker stopped.")
