from django import forms

from .models import Delivery, Role


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
    version = forms.IntegerField(widget=forms.HiddenInput)


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
