"""The report pages (issue 14): an index of the reports the user may read, a person's work,
a team's and a project's progress, each over a period with charts, a table and a CSV
(``?format=csv``). Who reads what is DESIGN.md §8: everyone their own work, managers their
projects' people and progress, administrators everything; reviewers read the quality pages.
"""

import csv
import io
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audits import charts
from core.access import Action, is_admin
from core.exceptions import ApplicationError
from core.parsers import whole_number
from core.spreadsheet import csv_cell
from projects.selectors import project_get_for_user, project_list_for_user

from . import selectors
from .periods import DEFAULT_DAYS, PRESETS, Period, last_days, parse_period


def _period(request) -> tuple[Period, list[str]]:
    """The period asked for; a bad value is named and the last 30 days shown instead."""
    try:
        return parse_period(request.GET), []
    except ApplicationError as exc:
        raw = str(request.GET.get(exc.field or "", ""))[:40]
        problem = (
            f"{exc.field} “{raw}” left out: {exc.message} Showing the last {DEFAULT_DAYS} days."
        )
        return last_days(DEFAULT_DAYS), [problem]


def _wants_csv(request) -> bool:
    return request.GET.get("format") == "csv"


def _csv_response(name: str, header: list[str], rows: list[list]) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[csv_cell(value) for value in row] for row in rows])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _day_labels(period: Period) -> tuple[list[str], list[str]]:
    return (
        [f"{d.day} {d:%b}" for d in period.days],
        [f"{d:%a} {d.day} {d:%b %Y}" for d in period.days],
    )


def _work_chart(label: str, period: Period, by_day: list[dict]):
    short, long = _day_labels(period)
    return charts.count_chart(
        label=label,
        x_labels=short,
        x_titles=long,
        unit=("item", "items"),
        series=_done(
            [
                charts.Series("Runs submitted", [d["submitted"] for d in by_day]),
                charts.Series("Reviews", [d["reviews"] for d in by_day]),
                charts.Series("Audits", [d["audits"] for d in by_day]),
            ]
        ),
    )


def _done(series: list) -> list:
    """The series of work someone did (an annotator's chart has no empty Reviews legend);
    the first when there was none."""
    return [s for s in series if any(s.values)] or series[:1]


def _time_chart(label: str, period: Period, by_day: list[dict]):
    short, long = _day_labels(period)
    return charts.count_chart(
        label=label,
        x_labels=short,
        x_titles=long,
        unit=("minute", "minutes"),
        series=[
            charts.Series("Active minutes", [round(d["active_seconds"] / 60, 1) for d in by_day])
        ],
    )


def _context(request, period: Period, problems: list[str], **extra) -> dict:
    base = {k: v for k, v in request.GET.items() if k not in {"from", "to", "days", "format"}}
    return {
        "period": period,
        "problems": problems,
        "presets": [
            {"days": n, "query": urlencode(base | {"days": n}), "current": period.preset == n}
            for n in PRESETS
        ],
        "query": urlencode(base | period.query()),
        "keep": base,
    } | extra


@require_GET
@login_required
def report_index(request):
    """The reports the user may read: their own, their managed projects' team and progress,
    and the quality pages of the projects they see."""
    projects = list(project_list_for_user(user=request.user))
    admin = is_admin(request.user)
    for project in projects:
        roles = {m.role for m in project.own_memberships}
        project.manages = admin or "manager" in roles
    managed = [p for p in projects if p.manages]
    return render(
        request,
        "reports/index.html",
        {"projects": projects, "managed": managed, "admin": admin},
    )


@require_GET
@login_required
def personal_report(request):
    found = selectors.personal_subject(viewer=request.user, username=request.GET.get("user"))
    if found is None:
        raise Http404("No such person.")
    subject, project_ids = found
    period, problems = _period(request)
    report = selectors.personal_report(user=subject, period=period, project_ids=project_ids)
    name = subject.get_username()
    if _wants_csv(request):
        header = ["day", *selectors.ACTIVITY_KEYS]
        rows = [
            [d["day"].isoformat(), *(d[k] for k in selectors.ACTIVITY_KEYS)]
            for d in report["by_day"]
        ]
        rows.append(["total", *(report["totals"][k] for k in selectors.ACTIVITY_KEYS)])
        return _csv_response(f"personal-{name}-{period.start}-{period.end}.csv", header, rows)
    own = subject.pk == request.user.pk
    return render(
        request,
        "reports/personal.html",
        _context(
            request,
            period,
            problems,
            report=report,
            subject=subject,
            own=own,
            active_days=[
                d for d in reversed(report["by_day"]) if any(d[k] for k in selectors.ACTIVITY_KEYS)
            ],
            work_chart=_work_chart(f"Work of {name} per day", period, report["by_day"]),
            time_chart=_time_chart(f"Active time of {name} per day", period, report["by_day"]),
        ),
    )


TEAM_COLUMNS = (
    ("username", "Person"),
    ("started", "Started"),
    ("submitted", "Submitted"),
    ("completed", "Completed"),
    ("active_seconds", "Active time"),
    ("median_seconds", "Median per run"),
    ("rework", "Sent back"),
    ("reviews", "Reviews"),
    ("audits", "Audits"),
    ("first_pass_rate", "First-pass rate"),
    ("accuracy", "Accuracy"),
)


def _team_project(request):
    raw = request.GET.get("project", "")
    if not raw:
        return None
    number = whole_number(raw)
    if number is None:
        raise Http404("No such project.")
    return project_get_for_user(user=request.user, project_id=number, action=Action.VIEW)


@require_GET
@login_required
def team_report(request):
    projects = selectors.team_projects(viewer=request.user, project=_team_project(request))
    period, problems = _period(request)
    sort = request.GET.get("sort", "username")
    descending = request.GET.get("dir") == "desc"
    report = selectors.team_report(
        projects=projects, period=period, sort=sort, descending=descending
    )
    if _wants_csv(request):
        keys = [k for k, _ in TEAM_COLUMNS]
        rows = [[p[k] for k in keys] for p in report["people"]]
        rows.append(["total", *(report["total"][k] for k in keys[1:])])
        scope = projects[0].slug if len(projects) == 1 else "managed-projects"
        return _csv_response(f"team-{scope}-{period.start}-{period.end}.csv", keys, rows)
    base = {k: v for k, v in request.GET.items() if k in {"project", "from", "to", "days"}}
    columns = []
    for key, label in TEAM_COLUMNS:
        flip = key == report["sort"] and not report["descending"]
        columns.append(
            {
                "key": key,
                "label": label,
                "sorted": key == report["sort"],
                "query": urlencode(base | {"sort": key, "dir": "desc" if flip else "asc"}),
            }
        )
    label = projects[0].name if len(projects) == 1 else "the projects you manage"
    return render(
        request,
        "reports/team.html",
        _context(
            request,
            period,
            problems,
            report=report,
            columns=columns,
            scope_label=label,
            single=projects[0] if len(projects) == 1 and request.GET.get("project") else None,
            work_chart=_work_chart(
                f"Work of the team of {label} per day", period, report["by_day"]
            ),
        ),
    )


PROJECT_KEYS = (
    "tasks_created",
    "tasks_completed",
    "runs_completed",
    "tasks",
    "tasks_done",
    "share_done",
)


@require_GET
@login_required
def project_report(request, slug):
    project = project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    period, problems = _period(request)
    report = selectors.project_report(project=project, period=period)
    by_day = report["by_day"]
    if _wants_csv(request):
        rows = [[d["day"].isoformat(), *(d[k] for k in PROJECT_KEYS)] for d in by_day]
        name = f"project-{project.slug}-{period.start}-{period.end}.csv"
        return _csv_response(name, ["day", *PROJECT_KEYS], rows)
    short, long = _day_labels(period)
    return render(
        request,
        "reports/project.html",
        _context(
            request,
            period,
            problems,
            project=project,
            report=report,
            done_chart=charts.line_chart(
                label=f"Share of the tasks of {project.name} done, day by day",
                x_labels=short,
                x_titles=long,
                series=[charts.Series("Tasks done", [d["share_done"] for d in by_day])],
                height=240,
            ),
            runs_chart=charts.count_chart(
                label=f"Work completed per day in {project.name}",
                x_labels=short,
                x_titles=long,
                unit=("item", "items"),
                series=[
                    charts.Series("Stage runs completed", [d["runs_completed"] for d in by_day]),
                ],
            ),
            tasks_chart=charts.count_chart(
                label=f"Tasks created and completed per day in {project.name}",
                x_labels=short,
                x_titles=long,
                unit=("task", "tasks"),
                stacked=False,
                series=[
                    charts.Series("Tasks completed", [d["tasks_completed"] for d in by_day]),
                    charts.Series("Tasks created", [d["tasks_created"] for d in by_day]),
                ],
            ),
            active_days=[d for d in reversed(by_day) if any(d[k] for k in PROJECT_KEYS[:3])],
        ),
    )
