from django.contrib import admin

from .models import Activity


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is written by the services alone."""

    list_display = ["created_at", "actor_name", "verb", "target_label", "project_name"]
    list_filter = ["verb"]
    search_fields = ["actor_name", "target_label", "project_name"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
