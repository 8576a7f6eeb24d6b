from django import forms

from blueprints.models import Blueprint
from core.widgets import PLAIN_WIDGETS
from projects.models import Dataset, ImportStatus, Membership, Role

from .filters import task_filter
from .models import Priority


class TaskCreateForm(forms.Form):
    name = forms.CharField(max_length=300)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    datasets = forms.ModelMultipleChoiceField(
        queryset=Dataset.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)
    annotators = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None: anyone may take it."
    )
    reviewers = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    due_at = forms.DateTimeField(
        required=False,
        label="Due",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    blueprint = forms.ChoiceField(help_text="The active blueprint unless you choose another.")
    batch = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["datasets"].queryset = Dataset.objects.filter(
            project=project, status=ImportStatus.FINISHED
        ).order_by("name")
        members = Membership.objects.filter(project=project).select_related("user")
        for field, role in (("annotators", Role.ANNOTATOR), ("reviewers", Role.REVIEWER)):
            names = sorted({m.user.username for m in members if m.role == role})
            self.fields[field].choices = [(n, n) for n in names]
        names = list(
            Blueprint.objects.filter(project=project)
            .order_by("-active", "name")
            .values_list("name", flat=True)
            .distinct()
        )
        self.fields["blueprint"].choices = [(n, n) for n in dict.fromkeys(names)]
        if names:
            self.fields["blueprint"].initial = names[0]  # the active one


SORTS = [
    ("-created_at", "Newest"),
    ("created_at", "Oldest"),
    ("due_at", "Due soonest"),
    ("-priority", "Priority"),
    ("name", "Name"),
]
STATUS_TABS = [
    ("", "All"),
    ("pending_start", "Pending start"),
    ("in_progress", "In progress"),
    ("pending_review", "Pending review"),
    ("review_passed", "Review passed"),
    ("data_submitted", "Data submitted"),
]


class TaskFilterForm(forms.Form):
    """The task list's filters, as they appear in the URL (drawn on every list page: its
    widgets are written without the template engine, the same markup)."""

    default_renderer = PLAIN_WIDGETS

    status = forms.ChoiceField(choices=STATUS_TABS, required=False)
    project = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    q = forms.CharField(required=False, max_length=200, label="Search")
    assignee = forms.CharField(required=False, max_length=150)
    reviewer = forms.CharField(required=False, max_length=150)
    priority = forms.ChoiceField(choices=[("", "Any priority"), *Priority.choices], required=False)
    batch = forms.CharField(required=False, max_length=200)
    due_after = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    due_before = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    overdue = forms.BooleanField(required=False)
    sort = forms.ChoiceField(choices=SORTS, required=False)

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "All projects")] + [(p.pk, p.name) for p in projects]

    def filters(self) -> dict:
        """The selector filter from the URL (tasks.filters, lenient: a bad value is left out,
        never a 500)."""
        self.left_out: list[str] = []
        return task_filter(self.data, strict=False, left_out=self.left_out)


class TaskEditForm(forms.Form):
    name = forms.CharField(max_length=300)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    priority = forms.ChoiceField(choices=Priority.choices)
    due_at = forms.DateTimeField(
        required=False, label="Due", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    batch = forms.CharField(max_length=200, required=False)
    annotators = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    reviewers = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        members = Membership.objects.filter(project=project).select_related("user")
        for field, role in (("annotators", Role.ANNOTATOR), ("reviewers", Role.REVIEWER)):
            names = sorted({m.user.username for m in members if m.role == role})
            self.fields[field].choices = [(n, n) for n in names]
