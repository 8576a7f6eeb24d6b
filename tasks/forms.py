from django import forms

from blueprints.models import Blueprint
from projects.models import Dataset, ImportStatus, Membership, Role

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
