import django_stubs_ext

# Before any model or admin module loads: lets Django's generic classes be subscripted at run
# time (`admin.ModelAdmin[Any]`, `models.Field[Any, Any]`) as mypy's stubs require.
django_stubs_ext.monkeypatch()

from config.celery import app as celery_app  # noqa: E402 - after the patch above

__all__ = ("celery_app",)
