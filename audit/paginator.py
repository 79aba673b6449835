"""A paginator that never counts the whole audit table.

Unfiltered: PostgreSQL's planner estimate (pg_class.reltuples), kept fresh by autovacuum.
Filtered: COUNT over at most AUDIT_ADMIN_COUNT_LIMIT + 1 rows, so the count costs no more than
reading that many index entries; beyond it the list says "more than N" and asks for a filter.
"""

from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.utils.functional import cached_property


def estimated_rows(model: type[Model], *, using: str = "default") -> int | None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        row: tuple[int] | None = cursor.fetchone()
    # -1 means "never analyzed": no estimate yet.
    return row[0] if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator[Any]):
    # The admin pages a queryset (the stubs allow any sliceable sequence).
    object_list: QuerySet[Any]
    is_estimate = False
    limit: int | None = None  # set by count

    @cached_property
    def count(self) -> int:
        self.limit = limit = settings.AUDIT_ADMIN_COUNT_LIMIT
        queryset = self.object_list
        if not queryset.query.where:
            estimate = estimated_rows(queryset.model, using=queryset.db)
            if estimate is not None and estimate > limit:
                self.is_estimate = True
                return estimate
        return queryset.order_by()[: limit + 1].count()

    @property
    def is_capped(self) -> bool:
        if self.is_estimate:
            return False
        count = self.count  # sets limit
        return self.limit is not None and count > self.limit
