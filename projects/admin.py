from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["role"]
    can_delete = False

    # Memberships change through the members page or API so that grants stay in step.
    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(GuardedModelAdmin):
    list_display = ["name", "slug", "delivery", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["version", "created_by", "created_at", "updated_at"]
    inlines = [MembershipInline]
