from django.urls import include, path

from activity import api as activity_api
from audits import api as audits_api
from audits.quality_api import ProjectQualityApi
from blueprints import api as blueprints_api
from core.api_views import TokenView
from projects import api as projects_api
from projects import dataset_api
from queues import api as queues_api
from tasks import api as tasks_api

app_name = "api"

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("projects/", projects_api.ProjectListApi.as_view(), name="project-list"),
    path(
        "projects/<int:project_id>/", projects_api.ProjectDetailApi.as_view(), name="project-detail"
    ),
    path("projects/<int:project_id>/quality/", ProjectQualityApi.as_view(), name="project-quality"),
    path(
        "projects/<int:project_id>/members/",
        projects_api.MemberListApi.as_view(),
        name="member-list",
    ),
    path(
        "projects/<int:project_id>/members/<int:user_id>/",
        projects_api.MemberDetailApi.as_view(),
        name="member-detail",
    ),
    path(
        "projects/<int:project_id>/blueprints/",
        blueprints_api.BlueprintListApi.as_view(),
        name="blueprint-list",
    ),
    path(
        "projects/<int:project_id>/blueprints/<str:name>/activate/",
        blueprints_api.BlueprintActivateApi.as_view(),
        name="blueprint-activate",
    ),
    path(
        "blueprints/<int:blueprint_id>/",
        blueprints_api.BlueprintDetailApi.as_view(),
        name="blueprint-detail",
    ),
    path(
        "projects/<int:project_id>/datasets/",
        dataset_api.DatasetListApi.as_view(),
        name="dataset-list",
    ),
    path(
        "datasets/<int:dataset_id>/", dataset_api.DatasetDetailApi.as_view(), name="dataset-detail"
    ),
    path(
        "datasets/<int:dataset_id>/samples/",
        dataset_api.SampleListApi.as_view(),
        name="sample-list",
    ),
    path("samples/<int:sample_id>/", dataset_api.SampleDetailApi.as_view(), name="sample-detail"),
    path(
        "samples/<int:sample_id>/frames/<str:camera>/<int:index>/",
        dataset_api.SampleFrameApi.as_view(),
        name="sample-frame",
    ),
    path(
        "samples/<int:sample_id>/series/",
        dataset_api.SampleSeriesApi.as_view(),
        name="sample-series",
    ),
    path("tasks/", tasks_api.TaskListApi.as_view(), name="task-list"),
    path("tasks/bulk/", tasks_api.TaskBulkApi.as_view(), name="task-bulk"),
    path("tasks/next/", tasks_api.TaskNextApi.as_view(), name="task-next"),
    path("tasks/batch/", tasks_api.TaskBatchApi.as_view(), name="task-batch"),
    path("tasks/<int:task_id>/", tasks_api.TaskDetailApi.as_view(), name="task-detail"),
    path(
        "tasks/<int:task_id>/stages/<str:key>/start/",
        tasks_api.StageStartApi.as_view(),
        name="stage-start",
    ),
    path(
        "tasks/<int:task_id>/stages/<str:key>/submit/",
        tasks_api.StageSubmitApi.as_view(),
        name="stage-submit",
    ),
    path(
        "tasks/<int:task_id>/stages/<str:key>/review/",
        tasks_api.StageReviewApi.as_view(),
        name="stage-review",
    ),
    path(
        "tasks/<int:task_id>/annotations/",
        tasks_api.AnnotationListApi.as_view(),
        name="annotation-list",
    ),
    path(
        "tasks/<int:task_id>/annotations/<int:annotation_id>/",
        tasks_api.AnnotationDetailApi.as_view(),
        name="annotation-detail",
    ),
    path("tasks/<int:task_id>/comments/", tasks_api.CommentListApi.as_view(), name="comment-list"),
    path(
        "tasks/<int:task_id>/comments/<int:comment_id>/resolve/",
        tasks_api.CommentResolveApi.as_view(),
        name="comment-resolve",
    ),
    path(
        "tasks/<int:task_id>/invalid-samples/",
        tasks_api.InvalidSampleListApi.as_view(),
        name="invalid-sample-list",
    ),
    path(
        "tasks/<int:task_id>/samples/<int:sample_id>/invalid/",
        tasks_api.SampleInvalidApi.as_view(),
        name="sample-invalid",
    ),
    path(
        "tasks/<int:task_id>/samples/sync/",
        tasks_api.TaskSamplesSyncApi.as_view(),
        name="task-samples-sync",
    ),
    path("tasks/<int:task_id>/events/", tasks_api.TaskEventsApi.as_view(), name="task-events"),
    path(
        "tasks/<int:task_id>/deliveries/",
        tasks_api.TaskDeliveriesApi.as_view(),
        name="task-deliveries",
    ),
    path("audits/", audits_api.AuditListApi.as_view(), name="audit-list"),
    path("audits/next/", audits_api.AuditNextApi.as_view(), name="audit-next"),
    path("audits/<int:audit_id>/", audits_api.AuditDetailApi.as_view(), name="audit-detail"),
    path(
        "audits/<int:audit_id>/findings/",
        audits_api.FindingListApi.as_view(),
        name="audit-finding-list",
    ),
    path(
        "audits/<int:audit_id>/findings/<int:finding_id>/accept/",
        audits_api.FindingAcceptApi.as_view(),
        name="audit-finding-accept",
    ),
    path(
        "audits/<int:audit_id>/findings/<int:finding_id>/dispute/",
        audits_api.FindingDisputeApi.as_view(),
        name="audit-finding-dispute",
    ),
    path(
        "audits/<int:audit_id>/findings/<int:finding_id>/settle/",
        audits_api.FindingSettleApi.as_view(),
        name="audit-finding-settle",
    ),
    path(
        "audits/<int:audit_id>/complete/",
        audits_api.AuditCompleteApi.as_view(),
        name="audit-complete",
    ),
    path("exports/", queues_api.ExportListApi.as_view(), name="export-list"),
    path("exports/<int:export_id>/", queues_api.ExportDetailApi.as_view(), name="export-detail"),
    path(
        "exports/<int:export_id>/download/",
        queues_api.ExportDownloadApi.as_view(),
        name="export-download",
    ),
    path(
        "exports/<int:export_id>/cancel/",
        queues_api.ExportCancelApi.as_view(),
        name="export-cancel",
    ),
    path("queues/", queues_api.QueueListApi.as_view(), name="queue-list"),
    path("activity/", activity_api.ActivityListApi.as_view(), name="activity-list"),
    path(
        "queues/<str:name>/<str:action>/", queues_api.QueueActionApi.as_view(), name="queue-action"
    ),
    path("", include("projects.progress_api_urls")),
    path("", include("tasks.assignment_api_urls")),
    path("", include("tasks.review_api_urls")),
    path("", include("reports.api_urls")),
    path("", include("notifications.api_urls")),
    path("", include("experience.api_urls")),
    path("", include("tasks.prelabel_api_urls")),
    path("", include("connectors.api_urls")),
]
