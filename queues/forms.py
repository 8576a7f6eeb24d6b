from django import forms

from .models import ExportFormat


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.LEROBOT)
    task_from = forms.ChoiceField(
        label="Episode task text (LeRobot)",
        choices=[("segments", "Segment descriptions"), ("task", "Task name")],
        initial="segments",
    )
    compress = forms.ChoiceField(
        label="Camera images (HDF5)",
        choices=[
            ("none", "Lossless frames"),
            ("jpeg", "JPEG, ALOHA's compressed layout (much smaller)"),
        ],
        initial="none",
    )
    incremental = forms.BooleanField(
        required=False, help_text="Only tasks changed since the previous version."
    )
    clean = forms.BooleanField(
        required=False, help_text="Drop invalid annotations and empty episodes, clip geometry."
    )
    submit = forms.BooleanField(
        required=False,
        label="Mark as submitted",
        help_text="Move exported review-passed tasks to data submitted.",
    )
    include_unfinished = forms.BooleanField(required=False, label="Include unfinished tasks")
