"""Tollgate's urls plus two baselines served by the same server stack:
- /bench/one-insert: a minimal Django view doing one INSERT per request (the framework's ceiling);
- /djstripe/webhook/<uuid>/: stock dj-stripe's own webhook view (synchronous processing).
"""

from django.urls import include, path

from bench.admin import plain_site
from bench.views import one_insert
from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as tollgate_urlpatterns

urlpatterns = [
    path("bench/one-insert", one_insert),
    path("bench/plain-admin/", plain_site.urls),
    path("djstripe/", include("djstripe.urls", namespace="djstripe")),
    *tollgate_urlpatterns,
]
