from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.access import Action, project_allows
from core.context_processors import nav_for
from core.exceptions import ApplicationError
from core.forms import add_application_error
from core.parsers import whole_number
from projects.selectors import project_get_for_user

from . import batch as batch_services
from . import selectors, services
from .forms import STATUS_TABS, TaskCreateForm, TaskFilterForm
from .pagination import NUMBERED_PAGES, TaskPaginator
from .services.transfer import transfer_forms

PAGE_SIZE = 50
URL_NAMES = ("list", "batch", "auto-assign")
FILTER_FIELDS = ("status", "project", "q", "assignee", "reviewer", "priority", "batch",
                 "due_after", "due_before", "overdue", "sort")  # fmt: skip


def _filter_state(request, source, projects=None) -> tuple[TaskFilterForm, dict, str]:
    from projects.selectors import project_list_for_user

    params = {k: v for k, v in source.items() if k in FILTER_FIELDS and v not in ("", None)}
    if projects is None:
        projects = project_list_for_user(user=request.user)
    form = TaskFilterForm(params, projects=projects)
    form.is_valid()
    return form, form.filters(), urlencode(params)


def _list_context(request, source, batch_state: dict | None = None) -> dict:
    # The user's memberships and projects read once for the filter, the list, the tabs and
    # the batch bar.
    access = selectors.task_list_access(user=request.user)
    if access.can_create_project is not None:
        # The navigation's roles and project creation came with the same query.
        nav_for(request).know(
            roles={role for _, role in access.memberships},
            can_create_project=access.can_create_project,
        )
    form, filters, query = _filter_state(request, source, projects=access.projects)
    status = filters.get("status") or ""
    # The tabs count under every filter but the status; the list is that, of one status.
    everything = selectors.task_list_for_user(
        user=request.user,
        filters={k: v for k, v in filters.items() if k != "status"},
        memberships=access.memberships,
    )
    kept = selectors.kept_status_counts(
        user=request.user, filters=filters, memberships=access.memberships
    )
    counts, estimated = (kept, set()) if kept is not None else selectors.status_counts(everything)
    tasks = everything.filter(status=status) if status else everything
    matching = counts.get(status or "all", 0)
    # Ids first (deep pages from the index), then the page's rows: what the table shows.
    paginator = TaskPaginator(tasks, PAGE_SIZE, rows=_table_rows)
    paginator.count = matching  # already counted for the tabs
    paginator.exact = (status or "all") not in estimated  # "about N": pages go on past it
    page, cursor_error = _page(paginator, source)
    base = {k: v for k, v in form.data.items() if k != "status"}
    tabs = [
        {
            "status": value,
            "label": label,
            "count": counts.get(value or "all", 0),
            "exact": (value or "all") not in estimated,
            "query": urlencode({**base, **({"status": value} if value else {})}),
            "selected": status == value,
        }
        for value, label in STATUS_TABS
    ]
    managed = access.managed
    # Managing a project is what allows batches: no second read of the memberships.
    can_batch = bool(managed) or batch_services.can_batch(request.user)
    rows_html = _row_html(page.object_list, can_batch=can_batch, batch_state=batch_state or {})
    return {
        "form": form,
        "managed_projects": managed,
        "tabs": tabs,
        # Reversed once for the page (the tabs and the pager link to the list a dozen times).
        "urls": {name.replace("-", "_"): reverse(f"tasks:{name}") for name in URL_NAMES},
        "page": page,
        "rows_html": rows_html,
        "pager": _pager(page),
        "cursor_error": cursor_error,
        "matching": matching,
        "matching_exact": paginator.exact,
        "query": query,
        "filter_items": list(form.data.items()),
        "can_batch": can_batch,
        "batch_state": batch_state,
        "batch_people": batch_services.batch_people(
            projects=managed, project_id=filters.get("project")
        )
        if managed
        else None,
    }


def _page(paginator: TaskPaginator, source) -> tuple:
    """The page asked for: by cursor (``?cursor=``, wins over ``?page=``) or by number; a
    cursor that is not one of this list's (altered, or made for another sort) shows the
    first page and says why, never a 500."""
    cursor = source.get("cursor")
    if cursor and paginator.order is not None:
        try:
            return paginator.cursor_page(cursor), False
        except ApplicationError:
            return paginator.get_page(1), True
    return paginator.get_page(source.get("page")), False


def _pager(page) -> dict | None:
    """The pager's links as query parameters (``page=N`` up to ``NUMBERED_PAGES``, else
    ``cursor=…``) and the page's number (None: a cursor that did not say it); None when
    there is one page only."""
    number = page.number
    previous = following = None
    if (
        number is not None
        and number > 1
        and (number <= NUMBERED_PAGES + 1 or not page.previous_cursor)
    ):
        previous = f"page={number - 1}"
    elif page.previous_cursor:
        previous = urlencode({"cursor": page.previous_cursor})
    if page.has_next():
        if number is not None and number < NUMBERED_PAGES:
            following = f"page={number + 1}"
        elif page.next_cursor:
            following = urlencode({"cursor": page.next_cursor})
        else:  # an order without cursors: by number, however deep
            following = f"page={number + 1}"
    if not (previous or following or page.paginator.num_pages > 1):
        return None
    return {"previous": previous, "next": following, "number": number}


def _table_rows(ids: list[int]) -> list[dict]:
    """The rows of the task table: plain values and the annotators' names, two queries for
    the page (no model instances, no queries per row)."""
    from .models import Priority, TaskStatus

    statuses, priorities = dict(TaskStatus.choices), dict(Priority.choices)
    rows = selectors.task_rows(
        ids,
        fields=("name", "description", "status", "priority", "batch", "due_at", "project__name"),
        related=("annotators",),
    )
    # One reverse for the page: the task's URL is the pattern with its id in place.
    url = reverse("tasks:detail", args=[0]).removesuffix("0/")
    for row in rows:
        row["url"] = f"{url}{row['id']}/"
        row["project_name"] = row.pop("project__name")
        row["status_label"] = statuses.get(row["status"], row["status"])
        row["priority_label"] = priorities.get(row["priority"], row["priority"])
    return rows


def _row_html(rows: list[dict], *, can_batch: bool, batch_state: dict) -> str:
    """The table's rows as one piece of markup: each row built here instead of some twenty
    template lookups and filters per row (the table was half of the page's rendering), with
    plain string formatting: every value escaped as ``format_html`` escapes it
    (``html.escape``), the dates as the ``date`` filter writes ``c`` and ``Y-m-d H:i``;
    joined with the whitespace the template's loop put around each row. The same markup the
    template wrote."""
    from html import escape

    from django.template.defaultfilters import truncatechars
    from django.utils.safestring import mark_safe
    from django.utils.timezone import template_localtime

    ticked = set(batch_state.get("ids") or [])
    everything = batch_state.get("all_matching")
    for row in rows:
        name = escape(str(row["name"]))
        box = ""
        if can_batch:
            checked = " checked" if everything or str(row["id"]) in ticked else ""
            box = (
                f'<td><input type="checkbox" name="ids" value="{row["id"]}" '
                f'aria-label="Select {name}"{checked}></td>'
            )
        description = (
            f'<div class="muted">{escape(truncatechars(row["description"], 80))}</div>'
            if row["description"]
            else ""
        )
        due = "—"
        if row["due_at"]:
            at = template_localtime(row["due_at"])
            due = f'<time datetime="{at.isoformat()}">{at:%Y-%m-%d %H:%M}</time>'
        people = (
            ", ".join(escape(str(person)) for person in row["annotators"])
            if row["annotators"]
            else '<span class="muted">anyone</span>'
        )
        status, priority = escape(str(row["status"])), escape(str(row["priority"]))
        status_label = escape(str(row["status_label"]))
        priority_label = escape(str(row["priority_label"]))
        row["html"] = mark_safe(  # noqa: S308 — every value above is escaped
            f'<tr>{box}<td><a href="{escape(row["url"])}">{name}</a>{description}</td>'
            f'<td><span class="badge status-{status}">{status_label}</span></td>'
            f'<td><span class="priority-{priority}">{priority_label}</span></td>'
            f"<td>{escape(str(row['batch'] or '—'))}</td><td>{due}</td><td>{people}</td>"
            f"<td>{escape(str(row['project_name']))}</td></tr>"
        )
    return mark_safe("".join(f"\n        {row['html']}\n      " for row in rows))  # noqa: S308


@login_required
def task_list(request):
    context = _list_context(request, request.GET)
    template = "tasks/list.html#task-results" if request.htmx else "tasks/list.html"
    return render(request, template, context)


@require_POST
@login_required
def task_batch(request):
    """Batch actions from the list's action bar: on the ticked rows or all matching tasks."""
    if not batch_services.can_batch(request.user):
        raise PermissionDenied("Only managers and administrators change tasks in batches.")
    form, filters, query = _filter_state(request, request.POST)
    action = request.POST.get("action", "")
    try:
        if request.POST.get("all_matching") == "1":
            chosen = {"filters": filters}
        else:
            ids = [n for i in request.POST.getlist("ids") if (n := whole_number(i)) is not None]
            chosen = {"ids": ids}
        n = batch_services.task_batch_apply(
            actor=request.user, action=BAR_ACTIONS.get(action, action), **chosen,
            **_batch_params(request.POST, action),
        )  # fmt: skip
    except ApplicationError as exc:
        if exc.field == "moves" and exc.extra.get("choices"):
            # Ask, keeping the selection and the people chosen: the bar shows a select per
            # person whose work has to go somewhere, and Reassign sends the same form again.
            context = _list_context(
                request,
                request.POST,
                batch_state={
                    "ids": request.POST.getlist("ids"),
                    "all_matching": request.POST.get("all_matching") == "1",
                    "annotators": _people(request.POST, "annotators") or [],
                    "reviewers": _people(request.POST, "reviewers") or [],
                },
            )
            context["moves_question"] = moves_question(exc)
            if request.htmx:
                return render(request, "tasks/list.html#task-results", context)
            return render(request, "tasks/list.html", context)
        messages.error(request, exc.message)
    else:
        said = BAR_MESSAGES.get(action, "Updated {tasks}.")
        messages.success(request, said.format(tasks=f"{n} task{'s' if n != 1 else ''}"))
    if request.htmx:
        return render(request, "tasks/list.html#task-results", _list_context(request, request.POST))
    return redirect(f"{reverse('tasks:list')}?{query}")


def _people(post, name: str) -> list[str] | None:
    """The usernames ticked in a member picker (or typed, comma-separated); None: unchanged."""
    names = [u.strip() for value in post.getlist(name) for u in value.split(",") if u.strip()]
    return list(dict.fromkeys(names)) or None


# The action bar's buttons: each names a batch action (priority, due date and batch name are
# updates of one field).
BAR_ACTIONS = {"priority": "update", "due": "update", "clear_due": "update", "batch": "update"}
BAR_MESSAGES = {
    "delete": "Deleted {tasks}. Their datasets are kept.",
    "assign": "Reassigned {tasks}.",
}


def _batch_params(post, action: str) -> dict:
    """What the action bar's form says for ``action``, as task_batch_apply takes it."""
    if action == "assign":
        return {
            "annotators": _people(post, "annotators"),
            "reviewers": _people(post, "reviewers"),
            "moves": moves_from(post),
        }
    if action == "priority":
        if not post.get("new_priority"):
            raise ApplicationError("Choose a priority first.", field="priority")
        return {"changes": {"priority": post.get("new_priority", "")}}
    if action == "clear_due":
        return {"changes": {"due_at": None}}
    if action == "batch":
        return {"changes": {"batch": post.get("new_batch", "")}}
    if action == "due":
        from django.utils import timezone
        from django.utils.dateparse import parse_datetime

        raw = post.get("new_due", "")
        if not raw:
            raise ApplicationError("Choose a due date first (or Clear due date).", field="due_at")
        due = parse_datetime(raw)
        if due is None:
            raise ApplicationError("Give the due date as date and time.", field="due_at")
        if due is not None and due.tzinfo is None:
            due = timezone.make_aware(due)
        return {"changes": {"due_at": due}}
    return {}


@login_required
def task_create(request, slug):
    """The task form, opened from the data page's selection (or empty)."""
    project = project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    initial = {"datasets": request.GET.getlist("datasets")}
    form = TaskCreateForm(request.POST or None, project=project, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            task = services.task_create(
                actor=request.user,
                project=project,
                name=data["name"],
                description=data["description"],
                priority=data["priority"],
                datasets=[d.pk for d in data["datasets"]],
                annotators=data["annotators"],
                reviewers=data["reviewers"],
                due_at=data["due_at"],
                blueprint=data["blueprint"],
                batch=data["batch"],
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Task “{task.name}” created.")
            return redirect("tasks:detail", task_id=task.pk)
    return render(request, "tasks/create.html", {"project": project, "form": form})


TABS = [
    ("data", "Annotation data"),
    ("batch-annotation", "Batch annotation"),
    ("invalid", "Invalid annotations"),
    ("statistics", "Annotation statistics"),
]


# htmx targets on the task page answered with partials only (no tab, history or comments).
LIVE_PARTIALS = {"task-live": "task-live", "task-stats": "task-stats"}


def _tab_context(request, task, tab: str) -> dict:
    context: dict = {}
    if tab == "data":
        linked = list(task.datasets.all())
        context["linked"] = linked
        context["addable"] = selectors.task_addable_datasets(
            task=task, exclude=[d.pk for d in linked]
        )
    elif tab == "batch-annotation":
        samples = selectors.task_sample_list(task=task)
        done = set(task.annotations.exclude(sample=None).values_list("sample", flat=True))
        context["samples"] = [(s, s.pk in done) for s in samples]
        from .review_selectors import batch_stages

        context["batch_stages"] = batch_stages(task=task, user=request.user)
        context["batch_data"] = {"task": task.pk, "stages": context["batch_stages"]}
    elif tab == "invalid":
        context["invalid"] = task.annotations.filter(invalid=True).select_related(
            "sample", "author"
        )
        context["invalid_samples"] = task.invalid_samples.select_related(
            "sample", "sample__dataset", "author"
        )
    else:
        context["descriptions"] = selectors.task_descriptions(task=task)
    return context


def _detail(request, task_id, tab):
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    context = {
        "task": task,
        "project": task.project,
        "tab": tab,
        "tabs": TABS,
        "stats": selectors.task_statistics(task=task),
        "can_change": project_allows(request.user, task.project, Action.CHANGE),
    }
    # The live refresh (the tab became visible again): the badge, stage strip and sidebar only.
    if request.htmx and request.htmx.target in LIVE_PARTIALS:
        return render(request, f"tasks/detail.html#{LIVE_PARTIALS[request.htmx.target]}", context)
    context.update(_tab_context(request, task, tab))
    if request.htmx and request.htmx.target == "tab-panel":
        return render(request, "tasks/detail.html#tab-panel", context)
    context["events"] = task.events.select_related("actor").order_by("-id")[:200]
    hidden = selectors.hidden_annotation_ids(task=task, user=request.user)
    context["comments"] = task.comments.select_related("author", "sample", "annotation").exclude(
        annotation__in=hidden
    )
    context["transfers"] = transfer_forms(task=task, user=request.user)
    from audits.views import task_audit_cards

    context["audits"] = task_audit_cards(task=task, user=request.user)
    return render(request, "tasks/detail.html", context)


@require_POST
@login_required
def task_transfer(request, task_id, key):
    """The Transfer form of the task page: hand over my run, or (managers) move a run."""
    from .services.transfer import ensure_may_transfer, run_transfer, user_named

    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    ensure_may_transfer(actor=request.user, task=task, stage_key=key)
    replica = request.POST.get("replica", "")
    try:
        run = run_transfer(
            actor=request.user,
            task=task,
            stage_key=key,
            replica=whole_number(replica),
            to_user=user_named(username) if (username := request.POST.get("username")) else None,
            reason=request.POST.get("reason", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{key} is now {run.assignee.username}'s.")
    return redirect("tasks:detail", task_id=task.pk)


@login_required
def task_detail(request, task_id):
    return _detail(request, task_id, "data")


@login_required
def task_tab(request, task_id, tab):
    if tab not in dict(TABS):
        from django.http import Http404

        raise Http404("No such tab.")
    return _detail(request, task_id, tab)


@require_POST
@login_required
def task_datasets(request, task_id):
    task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.CHANGE)
    add = [n for i in request.POST.getlist("add") if (n := whole_number(i)) is not None]
    remove = [n for i in request.POST.getlist("remove") if (n := whole_number(i)) is not None]
    try:
        services.task_datasets_change(actor=request.user, task=task, add=add, remove=remove)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("tasks:detail", task_id=task.pk)


@require_POST
@login_required
def task_invalid_annotation(request, task_id, annotation_id):
    from django.shortcuts import get_object_or_404

    from .models import Annotation

    task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.CHANGE)
    annotation = get_object_or_404(Annotation, pk=annotation_id, task=task)
    restore = request.POST.get("action") == "restore"
    try:
        services.annotation_manage_invalid(
            actor=request.user, annotation=annotation, restore=restore
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Annotation restored." if restore else "Annotation deleted.")
    return redirect("tasks:tab", task_id=task.pk, tab="invalid")


@require_POST
@login_required
def task_invalid_sample(request, task_id, sample_id):
    """A manager restores a sample an annotator marked invalid."""
    task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.CHANGE)
    try:
        services.sample_restore(actor=request.user, task=task, sample=sample_id)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Sample restored.")
    return redirect("tasks:tab", task_id=task.pk, tab="invalid")


@login_required
def task_descriptions_export(request, task_id, fmt):
    import csv
    import io
    import json

    from django.http import HttpResponse

    from core.spreadsheet import csv_cell

    if fmt not in {"csv", "json"}:
        from django.http import Http404

        raise Http404("Export as .csv or .json.")
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    rows = selectors.task_descriptions(task=task)
    if fmt == "json":
        response = HttpResponse(json.dumps(rows, indent=2), content_type="application/json")
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer,
            fieldnames=[
                "annotation",
                "sample",
                "label",
                "start",
                "end",
                "attribute",
                "text",
                "author",
            ],
        )
        writer.writeheader()
        # Descriptions are free text: a spreadsheet must not run one as a formula.
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="task-{task.pk}-descriptions.{fmt}"'
    return response


@login_required
def task_edit(request, task_id):
    """Edit a task's fields and people (managers)."""
    from .forms import TaskEditForm

    task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.CHANGE)
    initial = {
        "name": task.name,
        "description": task.description,
        "priority": task.priority,
        "due_at": task.due_at,
        "batch": task.batch,
        "annotators": [u.username for u in task.annotators.all()],
        "reviewers": [u.username for u in task.reviewers.all()],
    }
    form = TaskEditForm(request.POST or None, project=task.project, initial=initial)
    question = None
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        moves = moves_from(request.POST)
        try:
            services.task_update(actor=request.user, task=task, moves=moves, **data)
        except ApplicationError as exc:
            question = moves_question(exc)
            add_application_error(form, exc)
        else:
            messages.success(request, "Task saved.")
            return redirect("tasks:detail", task_id=task.pk)
    return render(
        request,
        "tasks/edit.html",
        {"task": task, "project": task.project, "form": form, "moves_question": question},
    )


MOVE_PREFIX = "move:"


def moves_question(exc: ApplicationError) -> list[dict] | None:
    """The service's reassignment question (an ApplicationError on ``moves``), for
    tasks/_moves_question.html: per person, their open runs and who may take them."""
    if exc.field != "moves" or not exc.extra.get("choices"):
        return None
    runs = exc.extra.get("runs", {})
    return [
        {"old": old, "choices": choices, "runs": runs.get(old, 0)}
        for old, choices in exc.extra["choices"].items()
    ]


def moves_from(post) -> dict[str, str | None] | None:
    """The answer to the reassignment question (tasks/_moves_question.html): who takes over
    whose open runs; an empty choice sends them back to the pool."""
    moves = {
        key.removeprefix(MOVE_PREFIX): (value or None)
        for key, value in post.items()
        if key.startswith(MOVE_PREFIX)
    }
    return moves or None


@require_POST
@login_required
def task_delete(request, task_id):
    task = selectors.task_get_for_user(user=request.user, task_id=task_id, action=Action.CHANGE)
    project = task.project
    services.task_delete(actor=request.user, task=task)
    messages.success(request, f"Task “{task.name}” deleted. Its datasets are kept.")
    target = f"{reverse('tasks:list')}?project={project.pk}"
    if request.htmx:
        from django_htmx.http import HttpResponseClientRedirect

        return HttpResponseClientRedirect(target)
    return redirect(target)
