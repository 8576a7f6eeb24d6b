"""JSON API for experience posts: thin translation onto the services and selectors."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from core.api import PatchSerializer
from projects.selectors import project_get_for_user

from . import selectors, services
from .models import Post, PostComment


class PostSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()
    promoted_to = serializers.PrimaryKeyRelatedField(read_only=True)
    comment_count = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = [
            "id",
            "project",
            "author",
            "title",
            "body",
            "task",
            "sample",
            "frame",
            "annotation",
            "promoted_to",
            "version",
            "comment_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_author(self, post: Post) -> str | None:
        """The author's username (null once their account is gone)."""
        return post.author.username if post.author else None

    def get_comment_count(self, post: Post) -> int:
        count = getattr(post, "comment_count", None)
        return count if count is not None else post.comments.count()


class PostInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=services.TITLE_LENGTH)
    body = serializers.CharField(max_length=services.BODY_LENGTH)
    task = serializers.IntegerField(required=False, allow_null=True, help_text="A task id.")
    sample = serializers.IntegerField(required=False, allow_null=True, help_text="A sample id.")
    frame = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    annotation = serializers.IntegerField(
        required=False, allow_null=True, help_text="An annotation of the task."
    )


class PostUpdateSerializer(PatchSerializer):
    version = serializers.IntegerField(
        required=False, help_text="The version you edit; a stale one answers 409."
    )
    title = serializers.CharField(max_length=services.TITLE_LENGTH, required=False)
    body = serializers.CharField(max_length=services.BODY_LENGTH, required=False)
    task = serializers.IntegerField(required=False, allow_null=True)
    sample = serializers.IntegerField(required=False, allow_null=True)
    frame = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    annotation = serializers.IntegerField(required=False, allow_null=True)

    class Meta:
        resource = PostSerializer
        read_only_hints = {"promoted_to": "POST /api/v1/posts/{id}/promote/ sets it."}


class PostCommentSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = PostComment
        fields = ["id", "post", "author", "body", "created_at"]
        read_only_fields = ["id", "post", "author", "created_at"]

    def get_author(self, comment: PostComment) -> str | None:
        return comment.author.username if comment.author else None


class PromoteResultSerializer(serializers.Serializer):
    post = PostSerializer()
    guideline = serializers.DictField(help_text="{id, title, version} of the guideline.")


class PostListApi(ListAPIView):
    """A project's posts, newest first (any member); any member posts."""

    serializer_class = PostSerializer

    def get_queryset(self):
        project = project_get_for_user(user=self.request.user, project_id=self.kwargs["project_id"])
        return selectors.post_list(project=project)

    @extend_schema(request=PostInputSerializer, responses={201: PostSerializer})
    def post(self, request, project_id: int):
        project = project_get_for_user(user=request.user, project_id=project_id)
        serializer = PostInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        post = services.post_create(
            actor=request.user, project=project, **serializer.validated_data
        )
        return Response(PostSerializer(post).data, status=status.HTTP_201_CREATED)


class PostDetailApi(GenericAPIView):
    serializer_class = PostSerializer

    def get(self, request, post_id: int):
        return Response(
            PostSerializer(selectors.post_get_for_user(user=request.user, post_id=post_id)).data
        )

    @extend_schema(request=PostUpdateSerializer, responses=PostSerializer)
    def patch(self, request, post_id: int):
        """Its author or a manager edits; send the ``version`` you read (409 if stale)."""
        post = selectors.post_get_for_user(user=request.user, post_id=post_id)
        if not services.may_edit(request.user, post):
            raise PermissionDenied("Only its author or a manager changes a post.")
        serializer = PostUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        post = services.post_update(actor=request.user, post=post, **serializer.validated_data)
        return Response(PostSerializer(post).data)

    @extend_schema(responses={204: None})
    def delete(self, request, post_id: int):
        post = selectors.post_get_for_user(user=request.user, post_id=post_id)
        services.post_delete(actor=request.user, post=post)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PostCommentListApi(ListAPIView):
    """A post's comments, oldest first; any member comments."""

    serializer_class = PostCommentSerializer
    pagination_class = None

    def get_queryset(self):
        post = selectors.post_get_for_user(user=self.request.user, post_id=self.kwargs["post_id"])
        return selectors.post_comment_list(post=post)

    @extend_schema(request=PostCommentSerializer, responses={201: PostCommentSerializer})
    def post(self, request, post_id: int):
        post = selectors.post_get_for_user(user=request.user, post_id=post_id)
        serializer = PostCommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = services.comment_create(
            actor=request.user, post=post, body=serializer.validated_data["body"]
        )
        return Response(PostCommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class PostPromoteApi(GenericAPIView):
    serializer_class = PromoteResultSerializer

    @extend_schema(request=None, responses=PromoteResultSerializer)
    def post(self, request, post_id: int):
        """Reviewers and managers make the post a guideline; again: update that guideline."""
        post = selectors.post_get_for_user(user=request.user, post_id=post_id)
        guideline = services.post_promote(actor=request.user, post=post)
        post = selectors.post_get_for_user(user=request.user, post_id=post_id)
        return Response(
            {
                "post": PostSerializer(post).data,
                "guideline": {
                    "id": guideline.pk,
                    "title": guideline.title,
                    "version": guideline.version,
                },
            }
        )
