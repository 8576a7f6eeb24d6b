from django import forms

from projects.models import DatasetFormat

from .models import Direction

FORMAT_CHOICES = [("", "Tell from the files"), *DatasetFormat.choices]


class ConnectionForm(forms.Form):
    name = forms.CharField(max_length=200)
    direction = forms.ChoiceField(choices=Direction.choices, initial=Direction.SOURCE)
    bucket = forms.CharField(max_length=255)
    prefix = forms.CharField(
        max_length=1024,
        required=False,
        help_text="A folder in the bucket, e.g. robots/aloha/. Empty: the whole bucket.",
    )
    endpoint_url = forms.CharField(
        max_length=500,
        required=False,
        label="Endpoint URL",
        help_text="For S3-compatible storage (MinIO, Ceph, R2…); empty for Amazon S3.",
    )
    region = forms.CharField(max_length=64, required=False, help_text="e.g. eu-west-1.")
    access_key_id = forms.CharField(max_length=256, required=False, label="Access key id")
    # Never rendered back: the page only says whether one is stored.
    secret_access_key = forms.CharField(
        max_length=1024,
        required=False,
        strip=False,
        label="Secret access key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Both keys empty: a public bucket.",
    )
    format = forms.ChoiceField(
        choices=FORMAT_CHOICES,
        required=False,
        help_text="Sources: the dataset format of what is imported.",
    )


class ConnectionEditForm(ConnectionForm):
    clear_secret = forms.BooleanField(
        required=False, label="Remove the stored secret (a public bucket)"
    )

    def __init__(self, *args, has_secret: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["secret_access_key"]
        if has_secret:
            field.help_text = "A secret is stored (encrypted). Leave empty to keep it."
