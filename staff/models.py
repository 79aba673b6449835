"""Staff access data: per-user API tokens, the API's second factor (docs/access.md)."""

from django.conf import settings
from django.db import models


class StaffApiToken(models.Model):
    """A bearer token a staff member made for themselves in the admin, behind their second
    factor. Only its SHA-256 is stored (the token is 256 random bits, so a fast hash is enough);
    the token itself is shown once. It works until it expires or is revoked, and only while its
    owner is an active staff member."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    prefix = models.CharField(max_length=16, help_text="The token's first characters.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "staff API token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        # Never the digest: this string reaches the admin and the trail.
        return f"{self.name} ({self.prefix}...)"
