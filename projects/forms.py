from django import forms

from .models import Assignment, DatasetFormat, Delivery, Role
from .selectors import AUDIT_KINDS, DEFAULT_AUDIT_KIND


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=70,
        required=False,
        label="Address",
        help_text="Used in links, e.g. pick-and-place. Left empty, it is made from the name.",
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    delivery = forms.ChoiceField(
        choices=Delivery.choices,
        initial=Delivery.TASK,
        help_text="Deliver a task's annotations when the whole task passes review, "
        "or each stage as soon as it completes.",
    )


class ProjectEditForm(ProjectForm):
    slug = None
    assignment = forms.ChoiceField(
        choices=Assignment.choices,
        initial=Assignment.PULL,
        required=False,  # left out: unchanged
        help_text="Push reserves each new task's ready stages for the least loaded eligible "
        "people (skills and capacity), as Auto-assign on the task list does.",
    )
    robot_type = forms.CharField(
        max_length=100,
        required=False,
        label="Robot type",
        help_text="What LeRobot exports name the robot (info.json robot_type), e.g. aloha or "
        "so100. Empty: the source's, if it says.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        if "robot_type" not in self.data:  # left out (an older page): unchanged, not unset
            cleaned.pop("robot_type", None)
        return cleaned


def _skills_field() -> forms.CharField:
    return forms.CharField(
        required=False, max_length=500, help_text="Comma-separated, e.g. robotics, grasping."
    )


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)
    skills = _skills_field()
    capacity = forms.IntegerField(min_value=0, max_value=10_000, initial=10)

    def clean_skills(self) -> list[str]:
        return [s for s in self.cleaned_data["skills"].split(",") if s.strip()]


class MemberEditForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    skills = _skills_field()
    capacity = forms.IntegerField(min_value=0, max_value=10_000)

    def clean_skills(self) -> list[str]:
        return [s for s in self.cleaned_data["skills"].split(",") if s.strip()]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(d, initial) for d in data]
        return [super().clean(data, initial)] if data else []


class DatasetImportForm(forms.Form):
    name = forms.CharField(max_length=200)
    format = forms.ChoiceField(choices=DatasetFormat.choices, initial=DatasetFormat.HDF5)
    files = MultipleFileField(
        required=False,
        help_text="One or more episode files or images, or a .zip of a folder "
        "(a LeRobot dataset or a Zarr store must come zipped or from a server folder).",
    )
    path = forms.CharField(
        required=False,
        max_length=1000,
        label="Or a folder on the server",
        help_text="Inside the server's import folders.",
    )
    fps = forms.FloatField(
        required=False, min_value=0.1, max_value=10_000, label="Frame rate (when files don't say)"
    )

    flip_cameras = forms.BooleanField(
        required=False,
        label="Flip robomimic/robosuite camera images (robosuite stores them upside down)",
    )

    def clean(self):
        data = super().clean()
        if not data.get("files") and not data.get("path"):
            raise forms.ValidationError("Choose files to upload or give a folder on the server.")
        if data.get("files") and data.get("path"):
            raise forms.ValidationError("Upload files or give a server folder, not both.")
        data["options"] = {"fps": data["fps"]} if data.get("fps") else {}
        if data.get("flip_cameras"):
            data["options"]["flip_cameras"] = True
        return data


class GuidelineForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10}),
        max_length=20_000,
        label="Text",
        help_text="Plain text; blank lines separate paragraphs.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class AuditSettingsForm(forms.Form):
    audit_percent = forms.FloatField(
        min_value=0,
        max_value=100,
        initial=0,
        label="Audit share of delivered units (%)",
        help_text="0 turns audit sampling off. Each delivered unit is drawn on its own and "
        "always the same way, so re-running never changes the sample.",
    )
    audit_kind = forms.ChoiceField(
        choices=list(AUDIT_KINDS.items()),
        initial=DEFAULT_AUDIT_KIND,
        widget=forms.RadioSelect,
        label="Audit kind",
    )


class RandomSampleReviewForm(forms.Form):
    percent = forms.FloatField(
        min_value=0.1,
        max_value=100,
        initial=20,
        label="Share of tasks to review (%)",
    )
    review_stage = forms.ChoiceField(label="In front of review stage", required=False)

    def __init__(self, *args, review_stages=(), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["review_stage"]
        field.choices = [(r.key, r.title) for r in review_stages]
        if len(review_stages) == 1:  # nothing to choose, but say which one
            field.widget = forms.HiddenInput()
            field.initial = review_stages[0].key
        elif not review_stages:  # a review stage is added
            del self.fields["review_stage"]
