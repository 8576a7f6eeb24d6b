"""Every project has a blueprint: give existing projects the default (annotate → review)."""

from django.db import migrations

DEFAULT = {'name': 'default', 'description': 'Annotate every sample, then a reviewer approves or sends it back.', 'taxonomy': [{'key': 'object', 'kind': 'box', 'attributes': [{'key': 'label', 'type': 'text'}]}, {'key': 'segment', 'kind': 'segment', 'attributes': [{'key': 'description', 'type': 'text', 'required': True}]}, {'key': 'outcome', 'kind': 'classification', 'choices': ['success', 'failure']}], 'stages': [{'key': 'annotate', 'kind': 'annotate', 'classes': ['object', 'segment', 'outcome'], 'params': {'instructions': 'Label what the task asks for in every sample.'}}, {'key': 'review', 'kind': 'review', 'depends_on': ['annotate'], 'reviews': ['annotate']}]}


def add_default(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    Blueprint = apps.get_model("blueprints", "Blueprint")
    for project in Project.objects.filter(blueprints__isnull=True):
        Blueprint.objects.create(
            project=project, name="default", version=1, definition=DEFAULT, active=True
        )


class Migration(migrations.Migration):
    dependencies = [("blueprints", "0001_initial"), ("projects", "0002_datasets")]

    operations = [migrations.RunPython(add_default, migrations.RunPython.noop)]
