"""The project page's form for importing pre-labels (tasks/services/prelabels.py)."""

from django import forms

from .services.prelabels import FORMATS


class PrelabelImportForm(forms.Form):
    file = forms.FileField(
        help_text="Our JSONL export's tasks.jsonl, a COCO annotations.json, or a LeRobot "
        "export's meta/stagecraft_annotations.jsonl (or the dataset as a zip)."
    )
    format = forms.ChoiceField(choices=list(FORMATS.items()))
    stage = forms.ChoiceField(
        required=False,
        help_text="Where the pre-labels go; by default each annotation's own stage (COCO "
        "boxes name none: choose one).",
    )
    task = forms.IntegerField(
        required=False,
        min_value=1,
        label="Task id",
        help_text="Import everything into this one task (samples matched by name); by default "
        "each annotation goes to the task the file names (unique id, else id).",
    )
    source_detail = forms.CharField(
        required=False,
        max_length=200,
        label="Where the labels come from",
        help_text="Shown on each pre-label, e.g. “model yolo-v8, 2026-11”.",
    )

    def __init__(self, *args, stages: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stage"].choices = [("", "Each annotation's own stage")] + [
            (key, key) for key in stages
        ]
