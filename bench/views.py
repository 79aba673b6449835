from django.db import connection
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

BASELINE_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS bench_one_insert (id bigserial PRIMARY KEY, body text NOT NULL)"
)


@csrf_exempt
def one_insert(request):
    """The least a webhook endpoint can do on this stack: read the body, one INSERT, 200."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_one_insert (body) VALUES (%s)", [request.body.decode()])
    return HttpResponse("ok")
