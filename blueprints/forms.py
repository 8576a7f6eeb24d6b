from django import forms


class BlueprintEditorForm(forms.Form):
    name = forms.CharField(
        max_length=200, required=False, help_text="Left empty, the document's own name is used."
    )
    source = forms.CharField(
        strip=False,
        label="Document (YAML or JSON)",
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false", "class": "code"}),
    )
    new_version = forms.BooleanField(
        required=False,
        label="Save as a new version",
        help_text="Keeps the current version as it is. Versions that tasks use always get a "
        "new version.",
    )


class BlueprintUploadForm(forms.Form):
    file = forms.FileField(label="Blueprint file (.yaml, .yml or .json)")
    name = forms.CharField(max_length=200, required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 1_000_000:
            raise forms.ValidationError("A blueprint file is at most 1 MB.")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
