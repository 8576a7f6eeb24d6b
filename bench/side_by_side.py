"""Stagecraft and Label Studio side by side, in one command (issue 15). Prints JSON.

Both products run on this machine at once, each on PostgreSQL 15 (Stagecraft on the main
cluster, 127.0.0.1:5432, database ``stagecraft_bench_side``; Label Studio on the peer kit's
private cluster, 127.0.0.1:5433), DEBUG off, N tasks in one project each, and every phase is
measured **interleaved**: request by request (or batch by batch) Label Studio, then
Stagecraft, so both see the same load on a shared machine.

Stagecraft's side uses the existing benches through imports: ``bench.task_list.build`` loads
the project (the manager ``boss``, 20 annotators, the realistic status mix),
``bench.common.serve`` starts the real server (gunicorn, 2 workers, else runserver), and the
export runs in a real RQ worker process, ``bench/export_throughput.py --worker`` (its peak RSS
is the worker's VmHWM). Label Studio's side uses the peer kit
(``../shared/peers/label-studio/``): ``ls_server.sh`` starts its cluster and its
``label-studio start`` server, and ``bench_ls.Bench`` makes the requests (legacy token) and
loads its tasks (its import, 1,000 tasks a request). Label Studio has no manager role: its one
user (the organization's owner) makes the requests; Stagecraft's are the project manager's.

Each run: create K tasks through the API (N - K -> N; K = 10,000, or N / 10 for small N;
1,000 a request), ANALYZE, list page 1 and page 500 (100 a page), the tasks page (Stagecraft:
``/tasks/`` HTML; Label Studio: the data-manager API call its page makes, 30 tasks), search
(Stagecraft: a name search; Label Studio: a 500-wide range filter on ``data.episode``), the
project dashboard (Stagecraft only), batch delete of the K newest tasks (N -> N - K), VACUUM
ANALYZE, the JSONL export of the N - K tasks left (Label Studio: its JSON export with every
task, inside the request; its server's peak RSS sampled during the export). A run ends with
N - K tasks, where it began, so ``--reuse`` runs again on the same data.

Wall time per request (a fresh connection per request: p50 / p95 / max over ``--requests``
interleaved pairs after 2 warm-ups each) and the **server CPU per request**: the CPU time
(/proc/PID/stat) of the server's processes and of PostgreSQL's processes over the phase,
divided by the requests (Label Studio: every process of its private cluster, the backends that
exited included through the postmaster's children times; Stagecraft: the backends of its
database, persistent connections). On a shared machine the CPU figures move far less than the
wall times.

.venv/bin/python bench/side_by_side.py [--tasks 100000] [--reuse] [--requests 20]
    [--markdown] [--out FILE] [--phases create,list,...] [--keep-servers]
.venv/bin/python bench/side_by_side.py --tasks 1000000 --stagecraft-only [--reuse]
.venv/bin/python bench/side_by_side.py --render FILE.json    # the Markdown table of a run

``--markdown`` prints the Markdown table instead of the JSON (the JSON is always written to
``--out``, default ``/tmp/peer_ls/results/side-<stamp>.json``). ``--stagecraft-only``: no
Label Studio, N tasks loaded (no create, delete or export), the reads only (list page 1,
page 500, the middle page, ``/tasks/``, search, the dashboard), in its own database
(``stagecraft_bench_side_1m`` at 1,000,000 tasks, else ``stagecraft_bench_side_only``).
Environment: SIDE_DB, SIDE_PORT (8104), SIDE_REDIS_URL (db 4), LS_ROOT (/tmp/peer_ls),
LS_PORT (8090), PEER_KIT (../shared/peers/label-studio).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import serve, summary  # noqa: E402

KIT = Path(os.environ.get("PEER_KIT", str(ROOT.parent / "shared" / "peers" / "label-studio")))
LS_ROOT = Path(os.environ.get("LS_ROOT", "/tmp/peer_ls"))  # noqa: S108
LS_PORT = int(os.environ.get("LS_PORT", "8090"))
LS_PGPORT = 5433
LS_TOKEN = "benchtoken0123456789abcdef"  # noqa: S105 - the kit's token, a loopback server
LS_USER, LS_PASSWORD = "bench@example.com", "benchpass123"
LS_STATE = LS_ROOT / "side_by_side_state.json"
SC_PORT = int(os.environ.get("SIDE_PORT", "8104"))
REDIS_URL = os.environ.get("SIDE_REDIS_URL", "redis://127.0.0.1:6379/4")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = 100  # tasks per list page, both sides
WORDS = ["kitchen", "warehouse", "garden", "office", "street", "lab", "garage", "shelf"]


# ---------------------------------------------------------------- CPU of processes (/proc)
def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_of(pid: int, children: bool = False) -> float:
    """utime + stime (and the reaped children's times) of a process, in seconds."""
    fields = _stat(pid)
    return sum(int(f) for f in fields[11 : 15 if children else 13]) / TICKS


def parents() -> dict[int, int]:
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found[int(proc.name)] = int(_stat(int(proc.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(x) for x in (task / "children").read_text().split()]
    return found


def family(root: int) -> set[int]:
    """A process and its descendants."""
    try:
        found, todo = {root}, [root]
        while todo:
            for child in children(todo.pop()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found
    except OSError:  # no /proc/PID/task/TID/children: scan every process
        tree = parents()
        found, grew = {root}, True
        while grew:
            more = {pid for pid, ppid in tree.items() if ppid in found} - found
            grew = bool(more)
            found |= more
        return found


def backends_of(postmaster: int, database: str) -> list[int]:
    """PostgreSQL backends connected to one database ("postgres: USER DB HOST(PORT) ...")."""
    found = []
    for pid in family(postmaster) - {postmaster}:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
            found.append(pid)
    return found


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Meter:
    """CPU seconds of a side's server and database processes between start() and stop().
    ``poll`` seconds: also read them meanwhile, for processes that end before stop() (the
    export worker's backend)."""

    def __init__(self, snapshot, poll: float | None = None) -> None:
        self.snapshot, self.poll = snapshot, poll

    def _merge(self, snap: dict) -> None:
        for part, values in snap.items():
            last = self.last.setdefault(part, {})
            for key, value in values.items():
                last[key] = max(last.get(key, 0.0), value)

    def __enter__(self):
        self.base = self.snapshot()
        self.last: dict = {}
        self._merge(self.base)
        self.done = threading.Event()
        if self.poll:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def _run(self) -> None:
        while not self.done.wait(self.poll):
            self._merge(self.snapshot())

    def __exit__(self, *exc) -> None:
        self.done.set()
        if self.poll:
            self.thread.join()
        self._merge(self.snapshot())
        self.seconds = {
            part: sum(v - self.base.get(part, {}).get(k, 0.0) for k, v in values.items())
            for part, values in self.last.items()
        }


def _safe(fn):
    def wrapped(*args):
        try:
            return fn(*args)
        except (OSError, IndexError, ValueError):
            return None

    return wrapped


def sc_snapshot(server_pid: int, database: str):
    """Stagecraft's server and the backends of its database on the shared cluster (its
    postmaster: the parent of this process's own backend)."""
    from django.db import connection

    cpu = _safe(cpu_of)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        postmaster = int(_stat(cursor.fetchone()[0])[1])

    def snap() -> dict:
        server = {p: cpu(p) for p in family(server_pid)}
        pg = {p: cpu(p) for p in backends_of(postmaster, database)}
        return {
            "server": {k: v for k, v in server.items() if v is not None},
            "postgres": {k: v for k, v in pg.items() if v is not None},
        }

    return snap


def ls_snapshot(server_pid: int):
    """Label Studio's server and its whole private cluster: the postmaster with its reaped
    children's times plus its live children (a backend per request: CONN_MAX_AGE 0)."""
    cpu = _safe(cpu_of)
    postmaster = int((LS_ROOT / "pg" / "data" / "postmaster.pid").read_text().split()[0])

    def snap() -> dict:
        server = {p: cpu(p) for p in family(server_pid)}
        live = [p for p in family(postmaster) if p != postmaster]
        cluster = (cpu(postmaster, True) or 0.0) + sum(cpu(p) or 0.0 for p in live)
        return {
            "server": {k: v for k, v in server.items() if v is not None},
            "postgres": {"cluster": cluster},
        }

    return snap


def cpu_figures(meter: Meter, calls: int, unit: str = "ms") -> dict:
    scale = 1000 if unit == "ms" else 1
    server = meter.seconds.get("server", 0.0)
    pg = meter.seconds.get("postgres", 0.0)
    return {
        f"server_cpu_{unit}": round(server / calls * scale, 2),
        f"postgres_cpu_{unit}": round(pg / calls * scale, 2),
        f"cpu_{unit}": round((server + pg) / calls * scale, 2),
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


def psql(sql: str, port: int = 5432, db: str = "postgres") -> None:
    subprocess.run(  # noqa: S603
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-qc", sql],  # noqa: S607
        check=True,
    )


# ---------------------------------------------------------------- Stagecraft's side
class Stagecraft:
    def __init__(self, args, database: str) -> None:
        self.args, self.database = args, database

    def setup(self, initial: int) -> None:
        from bench import task_list

        url = f"postgres://postgres@127.0.0.1:5432/{self.database}"
        exists = subprocess.run(  # noqa: S603
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc",  # noqa: S607
             f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],  # noqa: S608
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        if not self.args.reuse or not exists:
            psql(f"drop database if exists {self.database}")
            psql(f"create database {self.database}")
        self.media = Path(f"/tmp/stagecraft-side-media-{self.database}")  # noqa: S108
        self.media.mkdir(exist_ok=True)
        os.environ.update(
            DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0",
            SECRET_KEY="bench-only-secret-key-not-for-production-0123456789", LOG_LEVEL="WARNING",
            ALLOWED_HOSTS="127.0.0.1,testserver", REDIS_URL=REDIS_URL, MEDIA_ROOT=str(self.media),
            STATIC_ROOT="/tmp/stagecraft-side-static", DB_CONN_MAX_AGE="3600",  # noqa: S108
        )  # fmt: skip
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client
        from rest_framework.authtoken.models import Token

        from projects.models import Project

        assert not settings.DEBUG
        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        started = time.perf_counter()
        if self.args.reuse and Project.objects.filter(name=task_list.PROJECT).exists():
            project = Project.objects.get(name=task_list.PROJECT)
            self.loaded = None
        else:
            project = Project.objects.get(pk=task_list.build(initial)[0])
            self.loaded = round(time.perf_counter() - started, 1)
        self.project, self.slug = project.pk, project.slug
        self.manager = get_user_model().objects.get(username="boss")
        self.token = Token.objects.get_or_create(user=self.manager)[0].key
        self.client = Client()
        self.client.force_login(self.manager)
        session = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
        self.settle(initial)
        self.analyze()

    def count(self) -> int:
        from tasks.models import Task

        return Task.objects.filter(project_id=self.project).count()

    def newest(self, n: int) -> list[int]:
        from tasks.models import Task

        return list(
            Task.objects.filter(project_id=self.project)
            .order_by("-pk")
            .values_list("pk", flat=True)[:n]
        )

    def settle(self, initial: int) -> None:
        """Back to ``initial`` tasks after an interrupted run (untimed, through the services)."""
        from tasks.batch import task_batch_delete
        from tasks.models import Task
        from tasks.services import task_create_many

        have = self.count()
        if have > initial:
            extra = Task.objects.filter(pk__in=self.newest(have - initial))
            task_batch_delete(actor=self.manager, selection=extra)
        elif have < initial:
            from projects.models import Project

            project = Project.objects.get(pk=self.project)
            for start in range(have, initial, 5000):
                items = self.items(start, min(5000, initial - start), f"settle{time.time_ns()}")
                for item in items:
                    item.pop("project")
                task_create_many(actor=self.manager, project=project, items=items)
        self.settled = {"found": have, "now": self.count()}

    def analyze(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")

    def start(self, reads: list[tuple[str, bool]]) -> None:
        import socket

        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", SC_PORT)) == 0:  # serve() would talk to it
                raise SystemExit(f"port {SC_PORT} is taken: another server (SIDE_PORT=...)")
        os.environ["GUNICORN_CMD_ARGS"] = "--timeout 900"  # a long batch under load
        self.server = serve(SC_PORT)
        self.meter = sc_snapshot(self.server.pid, self.database)
        # Warm-up, untimed: two requests at once, so that both gunicorn workers have run
        # every path once (imports, URL resolver, caches) before anything is timed.
        try:
            self._warm(reads)
        except BaseException:
            self.stop()
            raise

    def _warm(self, reads: list[tuple[str, bool]]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            for path, html in reads:
                list(pool.map(lambda _, p=path, h=html: self.request("GET", p, html=h), range(2)))
            stamp = f"warm{time.time_ns()}"
            made = list(
                pool.map(
                    lambda i: json.loads(
                        self.request("POST", "/api/v1/tasks/bulk/", self.items(i * 10, 10, stamp))
                    )["ids"],
                    range(2),
                )
            )
            body = [{"action": "delete", "ids": ids} for ids in made]
            list(pool.map(lambda b: self.request("POST", "/api/v1/tasks/batch/", b), body))

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=60)

    def items(self, start: int, n: int, stamp: str) -> list[dict]:
        """Tasks as the API takes them: the loader's names, Label Studio's data as metadata."""
        return [
            {
                "project": self.project,
                "name": f"{WORDS[i % 8]} scene {i} take {i % 37}",
                "unique_id": f"side-{stamp}-{i}",
                "metadata": {
                    "image": "/static/x.png",
                    "episode": i,
                    "meta": {"source": "bench", "split": "train" if i % 5 else "val"},
                },
            }
            for i in range(start, start + n)
        ]

    def request(self, method: str, path: str, body=None, html: bool = False) -> bytes:
        headers = {"Connection": "close"}
        if html:
            headers["Cookie"] = self.cookie
        else:
            headers["Authorization"] = f"Token {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        call = urllib.request.Request(  # noqa: S310 - loopback only
            f"http://127.0.0.1:{SC_PORT}{path}", data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(call, timeout=900) as answer:  # noqa: S310
            assert answer.geturl().endswith(path), (path, answer.geturl())  # not the login page
            return answer.read()

    def queries(self, path: str) -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.client.get(path)
        with CaptureQueriesContext(connection) as captured:
            response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return len(captured.captured_queries)

    def export(self, expected: int) -> dict:
        """The JSONL export of every task, requested over the API as the manager, run by a
        real RQ worker process (export_throughput.py --worker: burst, VmHWM, queries)."""
        import django_rq

        from queues.models import Export

        django_rq.get_queue("exports").connection.flushdb()  # our db only (SIDE_REDIS_URL)
        Export.objects.filter(status__in=["queued", "started"]).update(status="cancelled")
        with Meter(self.meter, poll=0.25) as meter:
            began = time.perf_counter()
            answer = json.loads(
                self.request(
                    "POST",
                    "/api/v1/exports/",
                    {"project": self.project, "format": "jsonl", "include_unfinished": True},
                )
            )
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            worker = subprocess.run(  # noqa: S603
                [sys.executable, str(ROOT / "bench" / "export_throughput.py"), "--worker"],
                cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, check=True,
            )  # fmt: skip
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.perf_counter() - began
        export = Export.objects.get(pk=answer["id"])
        assert export.status == "finished", (export.status, export.error, worker.stderr[-2000:])
        figures = json.loads(worker.stdout.strip().splitlines()[-1])
        worker_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        exported = export.manifest["counts"]["tasks"]
        assert exported == expected, (exported, expected)
        return {
            "export_s": round((export.finished_at - export.started_at).total_seconds(), 2),
            "request_to_done_s": round(wall, 2),
            "tasks": exported,
            "size_mb": round(export.size_bytes / 1e6, 1),
            "peak_rss_mb": figures["peak_rss_mb"],
            "worker_job_s": figures["job_wall_seconds"],
            "worker_cpu_s": round(worker_cpu, 2),
            "worker_queries": figures["queries"],
            "server_cpu_s": round(meter.seconds.get("server", 0.0), 2),
            "postgres_cpu_s": round(meter.seconds.get("postgres", 0.0), 2),
            "cpu_s": round(worker_cpu + sum(meter.seconds.values()), 2),
        }


# ---------------------------------------------------------------- Label Studio's side
class LabelStudio:
    def __init__(self, args) -> None:
        self.args = args
        sys.path.insert(0, str(KIT))
        import bench_ls

        self.kit = bench_ls
        self.env = {**os.environ, "ROOT": str(LS_ROOT), "PORT": str(LS_PORT)}
        self.started_server = False

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{LS_PORT}/health", timeout=5):  # noqa: S310
                return True
        except OSError:
            return False

    def start(self) -> None:
        if not (LS_ROOT / "venv" / "bin" / "label-studio").exists():
            raise SystemExit(
                f"Label Studio is not installed in {LS_ROOT}/venv: see {KIT}/README.md"
            )
        if not (LS_ROOT / "pg" / "data").exists():
            subprocess.run([str(KIT / "ls_server.sh"), "pg-init"], env=self.env, check=True)  # noqa: S603
        try:
            pm = int((LS_ROOT / "pg" / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(pm, 0)
        except (OSError, ValueError):
            subprocess.run([str(KIT / "ls_server.sh"), "pg-start"], env=self.env, check=True)  # noqa: S603
        if not self._healthy():
            # The script waits 150 s; a loaded machine (or the first start's migrations) can
            # take longer, so its verdict is not the last word: /health is, for up to 15 min.
            subprocess.run([str(KIT / "ls_server.sh"), "start", "pg"], env=self.env, check=False)  # noqa: S603
            self.started_server = True
            for _ in range(900):
                if self._healthy():
                    break
                time.sleep(1)
            else:
                raise SystemExit(f"Label Studio did not start: see {LS_ROOT}/ls_pg.log")
        self.pid = int((LS_ROOT / "ls.pid").read_text())
        assert b"label-studio" in Path(f"/proc/{self.pid}/cmdline").read_bytes(), self.pid
        self.meter = ls_snapshot(self.pid)
        options = argparse.Namespace(
            base_url=f"http://127.0.0.1:{LS_PORT}", token=LS_TOKEN, keepalive=False,
            label="side-by-side", n=0, batch_size=1000, timeout=900.0, pid=self.pid, reps=1,
            deep_page=500, delete_count=0, export_reps=1, ui_reps=1, username=LS_USER,
            password=LS_PASSWORD, cleanup=False,
        )  # fmt: skip
        self.bench = self.kit.Bench(options)

    def stop(self) -> None:
        if self.started_server and not self.args.keep_servers:
            subprocess.run([str(KIT / "ls_server.sh"), "stop"], env=self.env, check=False)  # noqa: S603

    def setup(self, initial: int) -> None:
        self.start()
        state = json.loads(LS_STATE.read_text()) if LS_STATE.exists() else {}
        b = self.bench
        self.loaded = None
        if self.args.reuse and state.get("project"):
            b.pid = state["project"]
        else:
            if state.get("project"):  # the last run's project, deleted (untimed)
                try:
                    b.req("DELETE", f"/api/projects/{state['project']}/", timeout=1800)
                except RuntimeError as error:
                    print(f"label studio: old project not deleted: {error}", file=sys.stderr)
            b.t0 = time.perf_counter()
            b.create_project()
            LS_STATE.write_text(json.dumps({"project": b.pid}))
            b.args.n = initial
            b.import_tasks()  # the kit's import: episodes 0 .. initial - 1, 1,000 a request
            self.loaded = b.out["import"]
        self.project = b.pid
        self.settle(initial)
        self.view = self._view()
        self.analyze()

    def _view(self) -> int:
        found = self.bench.req("GET", "/api/dm/views", params={"project": self.project}).json()
        if found:
            return found[0]["id"]
        return self.bench.req("POST", "/api/dm/views", json={"project": self.project}).json()["id"]

    def count(self) -> int:
        return self.bench.count_tasks()

    def newest(self, n: int) -> list[int]:
        out = subprocess.run(  # noqa: S603
            ["psql", "-h", "127.0.0.1", "-p", str(LS_PGPORT), "-U", "postgres", "-d",  # noqa: S607
             "labelstudio", "-Atc",
             f"SELECT id FROM task WHERE project_id = {int(self.project)} "  # noqa: S608
             f"ORDER BY id DESC LIMIT {int(n)}"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return [int(x) for x in out.stdout.split()]

    def settle(self, initial: int) -> None:
        have = self.count()
        if have > initial:
            self.delete(self.newest(have - initial))
        elif have < initial:
            for start in range(have, initial, 1000):
                self.create(self.items(start, min(1000, initial - start)))
        self.settled = {"found": have, "now": self.count()}

    def analyze(self) -> None:
        psql("VACUUM (ANALYZE)", port=LS_PGPORT, db="labelstudio")

    @staticmethod
    def items(start: int, n: int) -> list[dict]:
        """The kit's task data (bench_ls.Bench.import_tasks)."""
        return [
            {
                "data": {
                    "image": "/static/x.png",
                    "episode": i,
                    "meta": {"source": "bench", "split": "train" if i % 5 else "val",
                             "tags": ["a", "b"], "score": (i % 97) / 97.0},
                }
            }
            for i in range(start, start + n)
        ]  # fmt: skip

    def create(self, items: list[dict]) -> list[int]:
        self.bench.t0 = time.perf_counter()
        answer = self.bench.req(
            "POST", f"/api/projects/{self.project}/import?return_task_ids=true", json=items
        ).json()
        assert answer.get("task_count") == len(items), answer
        return answer["task_ids"]

    def delete(self, ids: list[int]) -> None:
        self.bench.t0 = time.perf_counter()
        self.bench.req(
            "POST",
            "/api/dm/actions",
            params={"id": "delete_tasks", "project": self.project},
            json={"selectedItems": {"all": False, "included": ids}},
        )

    def get(self, path: str, params: dict) -> bytes:
        self.bench.t0 = time.perf_counter()
        return self.bench.req("GET", path, params=params).content

    def export(self, expected: int) -> dict:
        """Its export endpoint: JSON of every task, built inside the request."""
        b = self.bench
        peak = {"rss": rss_mb(self.pid)}
        before = peak["rss"]
        hwm_before = rss_mb(self.pid, "VmHWM")
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                peak["rss"] = max(peak["rss"], rss_mb(self.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        size = 0
        with Meter(self.meter) as meter:
            began = time.perf_counter()
            with b.s.get(
                b.base + f"/api/projects/{self.project}/export",
                headers=b.headers,
                params={"exportType": "JSON", "download_all_tasks": "true"},
                stream=True,
                timeout=3600,
            ) as answer:
                assert answer.status_code == 200, answer.text[:300]
                for chunk in answer.iter_content(1 << 20):
                    size += len(chunk)
            wall = time.perf_counter() - began
        done.set()
        sampler.join()
        hwm = rss_mb(self.pid, "VmHWM")
        return {
            "export_s": round(wall, 2),
            "tasks": expected,
            "size_mb": round(size / 1e6, 1),
            "peak_rss_mb": hwm if hwm > hwm_before else peak["rss"],
            "rss_before_mb": before,
            "peak_from": "VmHWM" if hwm > hwm_before else "VmRSS sampled every 0.1 s",
            "server_cpu_s": round(meter.seconds.get("server", 0.0), 2),
            "postgres_cpu_s": round(meter.seconds.get("postgres", 0.0), 2),
            "cpu_s": round(sum(meter.seconds.values()), 2),
        }


# ---------------------------------------------------------------- phases
def timed_pairs(calls: list, requests: int) -> list[dict]:
    """``calls``: (fn, meter) per side. Two warm-ups each, then ``requests`` rounds, each
    side once a round, in turn; wall per request and CPU per request per side."""
    for fn, _ in calls:
        fn()
        fn()
    times: list[list[float]] = [[] for _ in calls]
    meters = [Meter(meter) for _, meter in calls]
    for m in meters:
        m.__enter__()
    for _ in range(requests):
        for i, (fn, _) in enumerate(calls):
            began = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - began)
    for m in meters:
        m.__exit__(None, None, None)
    return [{**summary(t), **cpu_figures(m, requests)} for t, m in zip(times, meters, strict=True)]


def ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 2)


def run(args) -> dict:
    one_million = args.stagecraft_only and args.tasks >= 1_000_000
    database = os.environ.get(
        "SIDE_DB",
        "stagecraft_bench_side_1m"
        if one_million
        else "stagecraft_bench_side_only"
        if args.stagecraft_only
        else "stagecraft_bench_side",
    )  # --stagecraft-only never rebuilds the database that --reuse runs on
    k = min(10_000, args.tasks // 10)
    initial = args.tasks if args.stagecraft_only else args.tasks - k
    phases = args.phases.split(",") if args.phases else None

    def wanted(name: str) -> bool:
        return phases is None or name in phases

    out: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "tasks": args.tasks,
        "batch": k,
        "requests": args.requests,
        "page_size": PAGE,
        "cores": os.cpu_count(),
        "load_start": [round(x, 2) for x in os.getloadavg()],
        "phases": {},
    }
    sc = Stagecraft(args, database)
    ls = None if args.stagecraft_only else LabelStudio(args)
    began = time.perf_counter()
    failed: list[BaseException] = []
    if ls:  # Label Studio's import over HTTP while Stagecraft's loader runs here

        def ls_setup() -> None:
            try:
                ls.setup(initial)
            except BaseException as error:  # re-raised below
                failed.append(error)

        loading = threading.Thread(target=ls_setup)
        loading.start()
    sc.setup(initial)
    if ls:
        loading.join()
        if failed:
            raise failed[0]
    out["setup"] = {
        "stagecraft": {"database": database, "load_s": sc.loaded, "settled": sc.settled},
        "setup_s": round(time.perf_counter() - began, 1),
    }
    if ls:
        out["setup"]["label_studio"] = {
            "database": f"labelstudio on 127.0.0.1:{LS_PGPORT}",
            "project": ls.project,
            "import": ls.loaded,
            "settled": ls.settled,
        }
    from django.db import connection

    last = max((initial + PAGE - 1) // PAGE, 1)
    api = f"/api/v1/tasks/?project={sc.project}&page_size={PAGE}"
    sc.start([
        (api, False), (f"{api}&page={min(500, last)}", False),
        (f"{api}&search=scene%204242", False), (f"/tasks/?project={sc.project}", True),
        (f"/projects/{sc.slug}/", True),
    ])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        out["postgres"] = cursor.fetchone()[0]
        cursor.execute("SHOW jit")
        out["stagecraft_jit"] = cursor.fetchone()[0]
    try:
        out["servers"] = {
            "stagecraft": "gunicorn -w 2" if "gunicorn" in Path(
                f"/proc/{sc.server.pid}/cmdline").read_text() else "runserver",
        }  # fmt: skip
        if ls:
            out["servers"]["label_studio"] = "label-studio start (runserver, one process)"
        phase = out["phases"]
        created: dict[str, list[int]] = {"ls": [], "sc": []}

        if ls and wanted("create"):  # N - K -> N, 1,000 a request, batch by batch in turn
            stamp = str(time.time_ns())
            # Warm-up, untimed: both paths once (imports, caches), then those tasks deleted.
            ls.delete(ls.create(ls.items(initial, 10)))
            warm = json.loads(sc.request("POST", "/api/v1/tasks/bulk/", sc.items(0, 10, stamp)))
            sc.request("POST", "/api/v1/tasks/batch/", {"action": "delete", "ids": warm["ids"]})
            times: dict[str, list[float]] = {"ls": [], "sc": []}
            load0 = load()
            with Meter(ls.meter) as ls_m, Meter(sc.meter) as sc_m:
                for start in range(initial, args.tasks, 1000):
                    n = min(1000, args.tasks - start)
                    t = time.perf_counter()
                    created["ls"] += ls.create(ls.items(start, n))
                    times["ls"].append(time.perf_counter() - t)
                    body = sc.items(start, n, stamp)
                    t = time.perf_counter()
                    answer = json.loads(sc.request("POST", "/api/v1/tasks/bulk/", body))
                    times["sc"].append(time.perf_counter() - t)
                    created["sc"] += answer["ids"]
            figures = {}
            for side, meter in (("ls", ls_m), ("sc", sc_m)):
                total = sum(times[side])
                figures[side] = {
                    "tasks": len(created[side]),
                    "tasks_per_s": round(len(created[side]) / total),
                    "request_p50_ms": summary(times[side])["p50_ms"],
                    **cpu_figures(meter, len(created[side])),
                }
            phase["create"] = {
                **figures,
                "ratio_sc_over_ls": ratio(
                    figures["sc"]["tasks_per_s"], figures["ls"]["tasks_per_s"]
                ),
                "cpu_ratio_ls_over_sc": ratio(figures["ls"]["cpu_ms"], figures["sc"]["cpu_ms"]),
                "load": [load0, load()],
            }
            print(f"create: {json.dumps(phase['create'])}", file=sys.stderr)
            ls.analyze()
            sc.analyze()

        last = max((sc.count() + PAGE - 1) // PAGE, 1)
        reads = {
            "list page 1": (f"{api}", False, "/api/tasks", {"page": 1}),
            "list page 500": (f"{api}&page={min(500, last)}", False, "/api/tasks",
                              {"page": min(500, last)}),
            "tasks page": (f"/tasks/?project={sc.project}", True, "/api/tasks",
                           {"page": 1, "page_size": 30, "view": getattr(ls, "view", 0)}),
            "search": (f"{api}&search=scene%204242", False, "/api/tasks", "episode"),
            "dashboard": (f"/projects/{sc.slug}/", True, None, None),
        }  # fmt: skip
        if args.stagecraft_only:
            reads["list middle page"] = (f"{api}&page={last // 2}", False, None, None)
            # The page after it by its keyset cursor (what following ``next`` reads there).
            middle = json.loads(sc.request("GET", f"{api}&page={last // 2}"))
            cursor = urllib.parse.quote(middle["next_cursor"])
            reads["list middle page by cursor"] = (f"{api}&cursor={cursor}", False, None, None)
        for name, (path, html, ls_path, ls_params) in reads.items():
            if not wanted(name.split()[0]) and not wanted(name):
                continue
            calls = []
            if ls and ls_path:
                if ls_params == "episode":  # the kit's filter: a 500-wide data.episode range
                    lo = max(0, args.tasks // 2 - 250)
                    query = {"filters": {"conjunction": "and", "items": [{
                        "filter": "filter:tasks:data.episode", "operator": "in",
                        "type": "Number", "value": {"min": lo, "max": lo + 499}}]}}  # fmt: skip
                    ls_params = {"page": 1, "query": json.dumps(query)}
                params = {"project": ls.project, "page_size": PAGE, **ls_params}
                calls.append((lambda p=params, q=ls_path: ls.get(q, p), ls.meter))
            calls.append((lambda p=path, h=html: sc.request("GET", p, html=h), sc.meter))
            load0 = load()
            found = timed_pairs(calls, args.requests)
            entry = {"sc": {"path": path, **found[-1], "queries": sc.queries(path)}}
            if len(found) == 2:
                entry["ls"] = {"path": ls_path, "params": params, **found[0]}
                entry["ratio_ls_over_sc"] = ratio(found[0]["p50_ms"], found[1]["p50_ms"])
                entry["cpu_ratio_ls_over_sc"] = ratio(found[0]["cpu_ms"], found[1]["cpu_ms"])
            if path.startswith("/api/"):
                entry["sc"]["count"] = json.loads(sc.request("GET", path))["count"]
                if ls and ls_path:
                    entry["ls"]["total"] = json.loads(ls.get(ls_path, params)).get("total")
            entry["load"] = [load0, load()]
            phase[name] = entry
            print(f"{name}: {json.dumps(entry)}", file=sys.stderr)

        if ls and wanted("delete"):  # the K newest (those just created): N -> N - K
            ids = {"ls": created["ls"] or ls.newest(k), "sc": created["sc"] or sc.newest(k)}
            load0 = load()
            figures = {}
            with Meter(ls.meter) as m:
                t = time.perf_counter()
                ls.delete(ids["ls"])
                figures["ls"] = {"tasks": len(ids["ls"]), "s": round(time.perf_counter() - t, 3)}
            figures["ls"].update(cpu_figures(m, 1, "s"))
            with Meter(sc.meter) as m:
                t = time.perf_counter()
                answer = json.loads(
                    sc.request(
                        "POST", "/api/v1/tasks/batch/", {"action": "delete", "ids": ids["sc"]}
                    )
                )
                figures["sc"] = {
                    "tasks": answer["affected"],
                    "s": round(time.perf_counter() - t, 3),
                }
            figures["sc"].update(cpu_figures(m, 1, "s"))
            phase["batch delete"] = {
                **figures,
                "ratio_ls_over_sc": ratio(figures["ls"]["s"], figures["sc"]["s"]),
                "cpu_ratio_ls_over_sc": ratio(figures["ls"]["cpu_s"], figures["sc"]["cpu_s"]),
                "load": [load0, load()],
                "left": {"ls": ls.count(), "sc": sc.count()},
            }
            print(f"batch delete: {json.dumps(phase['batch delete'])}", file=sys.stderr)
            ls.analyze()
            sc.analyze()

        if ls and wanted("export"):
            expected = sc.count()
            load0 = load()
            figures = {"ls": ls.export(ls.count())}
            load1 = load()
            figures["sc"] = sc.export(expected)
            phase["export"] = {
                **figures,
                "ratio_ls_over_sc": ratio(figures["ls"]["export_s"], figures["sc"]["export_s"]),
                "cpu_ratio_ls_over_sc": ratio(figures["ls"]["cpu_s"], figures["sc"]["cpu_s"]),
                "rss_ratio_ls_over_sc": ratio(
                    figures["ls"]["peak_rss_mb"], figures["sc"]["peak_rss_mb"]
                ),
                "load": [load0, load1, load()],
            }
            print(f"export: {json.dumps(phase['export'])}", file=sys.stderr)
    finally:
        sc.stop()
        if ls:
            ls.stop()
    out["load_end"] = [round(x, 2) for x in os.getloadavg()]
    out["wall_s"] = round(time.perf_counter() - began, 1)
    return out


# ---------------------------------------------------------------- Markdown
def markdown(result: dict) -> str:
    p = result["phases"]
    both = "ls" in next(iter(p.values()), {}) if p else False

    def lat(side: dict) -> str:
        return f"{side['p50_ms']:,.0f} / {side['p95_ms']:,.0f} ms ({side['cpu_ms']:,.1f} ms CPU)"

    def r(x) -> str:
        return f"{x}×" if x is not None else "–"

    lines = [
        f"{result['tasks']:,} tasks, {result['when']}, PostgreSQL {result.get('postgres', '?')}, "
        f"{result['requests']} interleaved requests per figure, {result['page_size']} tasks a "
        f"list page; 1-minute load average {result['load_start'][0]} at the start, "
        f"{result['load_end'][0]} at the end.",
        "",
    ]
    if both:
        lines += [
            "| work | Label Studio 1.23.2 | Stagecraft (manager) | wall ratio (LS ÷ SC) "
            "| CPU ratio (LS ÷ SC) | load |",
            "|---|---|---|---|---|---|",
        ]  # fmt: skip
    else:
        lines += ["| work | Stagecraft (manager) | queries | load |", "|---|---|---|---|"]
    labels = {
        "list page 1": "task list API, page 1, p50 / p95",
        "list page 500": "task list API, page 500, p50 / p95",
        "list middle page": "task list API, middle page by number, p50 / p95",
        "list middle page by cursor": "task list API, the page after it by `next`, p50 / p95",
        "tasks page": "tasks page, p50 / p95 (SC `/tasks/` HTML; LS its data-manager API call)",
        "search": "search, p50 / p95 (SC name search; LS `data.episode` range filter)",
        "dashboard": "project dashboard `/projects/<slug>/` (SC only)",
    }
    for name, label in labels.items():
        if name not in p:
            continue
        e = p[name]
        ld = f"{e['load'][0]}–{e['load'][1]}"
        if both and "ls" in e:
            lines.append(
                f"| {label} | {lat(e['ls'])} | {lat(e['sc'])} | {r(e['ratio_ls_over_sc'])} "
                f"| {r(e['cpu_ratio_ls_over_sc'])} | {ld} |"
            )
        elif both:
            lines.append(f"| {label} | – | {lat(e['sc'])} | – | – | {ld} |")
        else:
            lines.append(f"| {label} | {lat(e['sc'])} | {e['sc']['queries']} | {ld} |")
    if "create" in p:
        e = p["create"]
        lines.append(
            f"| create {e['sc']['tasks']:,} tasks through the API, tasks/s (1,000 a request) "
            f"| {e['ls']['tasks_per_s']:,} ({e['ls']['cpu_ms']} ms CPU/task) "
            f"| {e['sc']['tasks_per_s']:,} ({e['sc']['cpu_ms']} ms CPU/task) "
            f"| {r(e['ratio_sc_over_ls'])} (SC ÷ LS) | {r(e['cpu_ratio_ls_over_sc'])} "
            f"| {e['load'][0]}–{e['load'][1]} |"
        )
    if "batch delete" in p:
        e = p["batch delete"]
        lines.append(
            f"| batch delete of {e['sc']['tasks']:,} tasks "
            f"| {e['ls']['s']} s ({e['ls']['cpu_s']} s CPU) "
            f"| {e['sc']['s']} s ({e['sc']['cpu_s']} s CPU) | {r(e['ratio_ls_over_sc'])} "
            f"| {r(e['cpu_ratio_ls_over_sc'])} | {e['load'][0]}–{e['load'][1]} |"
        )  # fmt: skip
    if "export" in p:
        e = p["export"]
        ls_e, sc_e = e["ls"], e["sc"]
        lines.append(
            f"| export of {sc_e['tasks']:,} tasks (LS JSON in the request; SC JSONL in an RQ "
            f"worker) | {ls_e['export_s']} s ({ls_e['cpu_s']} s CPU), {ls_e['size_mb']} MB "
            f"| {sc_e['export_s']} s ({sc_e['cpu_s']} s CPU), {sc_e['size_mb']} MB "
            f"| {r(e['ratio_ls_over_sc'])} | {r(e['cpu_ratio_ls_over_sc'])} "
            f"| {e['load'][0]}–{e['load'][-1]} |"
        )
        lines.append(
            f"| export peak RSS (LS server process; SC worker process) | {ls_e['peak_rss_mb']} MB "
            f"(from {ls_e['rss_before_mb']} MB) | {sc_e['peak_rss_mb']} MB "
            f"| {r(e['rss_ratio_ls_over_sc'])} | | |"
        )
    return "\n".join(lines)


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="run on an earlier run's data")
    parser.add_argument("--stagecraft-only", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="print the table, not the JSON")
    parser.add_argument("--render", default="", help="print the table of a result file and stop")
    parser.add_argument("--out", default="")
    parser.add_argument("--phases", default="", help="create,list,tasks,search,dashboard,...")
    parser.add_argument("--keep-servers", action="store_true", help="leave Label Studio running")
    args = parser.parse_args()
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())))
        return
    if not 1000 <= args.tasks <= 1_000_000 or not 1 <= args.requests <= 500:
        raise SystemExit("--tasks 1,000..1,000,000 and --requests 1..500")
    result = run(args)
    out = Path(args.out or LS_ROOT / "results" / f"side-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}", file=sys.stderr)
    print(markdown(result) if args.markdown else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
