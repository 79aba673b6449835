"""A paginator that never counts the whole audit table.

Unfiltered: PostgreSQL's planner estimate (pg_class.reltuples), kept fresh by autovacuum.
Filtered: COUNT over at most AUDIT_ADMIN_COUNT_LIMIT + 1 rows, so the count costs no more than
reading that many index entries; beyond it the list says "more than N" and asks for a filter.
"""

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


def estimated_rows(model, *, using: str = "default") -> int | None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    # -1 means "never analyzed": no estimate yet.
    return row[0] if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    is_estimate = False
    limit = None

    @cached_property
    def count(self) -> int:
        self.limit = settings.AUDIT_ADMIN_COUNT_LIMIT
        queryset = self.object_list
        if not queryset.query.where:
            estimate = estimated_rows(queryset.model, using=queryset.db)
            if estimate is not None and estimate > self.limit:
                self.is_estimate = True
                return estimate
        return queryset.order_by()[: self.limit + 1].count()

    @property
    def is_capped(self) -> bool:
        return not self.is_estimate and self.count > self.limit
