from django.conf import settings
from django.db import models


class Post(models.Model):
    """A tip or worked example a project member shares with the team, optionally pinned to
    a task, a sample and frame, or an annotation. Reviewers and managers can promote it into
    the project's guidelines (``promoted_to``)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=200)
    body = models.TextField()
    task = models.ForeignKey(
        "tasks.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sample = models.ForeignKey(
        "projects.Sample", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    frame = models.PositiveIntegerField(null=True, blank=True)
    annotation = models.ForeignKey(
        "tasks.Annotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_to = models.ForeignKey(
        "projects.Guideline", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at", "-id"], name="post_project_newest")
        ]

    def __str__(self) -> str:
        return self.title


class PostComment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["post", "id"]

    def __str__(self) -> str:
        return f"comment on post {self.post_id}"
