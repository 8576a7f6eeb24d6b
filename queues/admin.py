from django.contrib import admin

from .models import Export, QueueAction


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "format", "status", "requested_by", "created_at"]
    list_filter = ["status", "format"]
    readonly_fields = [f.name for f in Export._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(QueueAction)
class QueueActionAdmin(admin.ModelAdmin):
    """The log of queue administration (pause, resume, empty, clean, retry)."""

    list_display = ["created_at", "actor", "queue", "action", "count"]
    list_filter = ["queue", "action"]
    readonly_fields = ["created_at", "actor", "queue", "action", "count"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
