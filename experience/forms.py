import re

from django import forms

from core.parsers import whole_number

from .services import BODY_LENGTH, COMMENT_LENGTH, TITLE_LENGTH

_TASK_URL = re.compile(r"/(?:tasks|workspace)/(\d+)(?:/|$)")


class PostForm(forms.Form):
    title = forms.CharField(max_length=TITLE_LENGTH)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10}),
        max_length=BODY_LENGTH,
        label="Text",
        help_text="Plain text; blank lines separate paragraphs.",
    )
    task = forms.CharField(
        required=False,
        max_length=300,
        label="Task",
        help_text="The task's number, or paste its address (…/tasks/123/ or a workspace link).",
    )
    sample = forms.IntegerField(
        required=False, min_value=1, label="Sample id", help_text="An episode or an image."
    )
    frame = forms.IntegerField(required=False, min_value=0, label="Frame")
    annotation = forms.IntegerField(
        required=False, min_value=1, label="Annotation id", help_text="One of the task's."
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def clean_task(self):
        value = (self.cleaned_data.get("task") or "").strip()
        if not value:
            return None
        if (number := whole_number(value)) is not None:
            return number
        found = _TASK_URL.search(value)
        if found:
            return int(found.group(1))
        raise forms.ValidationError("Give the task's number or its address.")


class PostCommentForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=COMMENT_LENGTH, label="Your comment"
    )
