"""The baseline for the compliance console: a plain ModelAdmin with Django's default paginator
(a full COUNT(*) per page) over the same audit table, on a separate admin site."""

from django.contrib import admin

from audit.models import AuditEvent

plain_site = admin.AdminSite(name="plain_admin")


class PlainAuditEventAdmin(admin.ModelAdmin):
    list_display = ("sequence", "occurred_at", "action", "actor_name", "outcome", "target_repr")
    list_filter = ("action", "outcome")
    # Django's own template, not the compliance console's (which adds export links).
    change_list_template = "admin/change_list.html"


plain_site.register(AuditEvent, PlainAuditEventAdmin)
