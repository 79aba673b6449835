"""Tollgate settings, read from the environment (12-factor).

With nothing set the project runs on embedded defaults (SQLite file, local-memory cache, eager
Celery) so `make run` needs no services. With DJANGO_ENV=production every setting that guards
money or secrets must be given explicitly; a missing one stops start-up with its name.
Every variable is listed in the README's configuration table.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.client import trusted_proxies_parse

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development or production, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

# Settings that production refuses to start without. Checked once, here, so the error names
# every missing variable at once instead of failing later on first use.
PRODUCTION_REQUIRED = (
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "STRIPE_SECRET_KEY",
    "AUDIT_CHECKPOINT_KEY",
)
if PRODUCTION:
    missing = [name for name in PRODUCTION_REQUIRED if not env.str(name, default="")]
    if missing:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production requires these environment variables: " + ", ".join(missing)
        )

# Development-only fallback key: it never reaches production (required above).
DEV_SECRET_KEY = "dev-insecure-" + "tollgate-local-only-key-never-use-in-production-0123456789"
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY == DEV_SECRET_KEY):
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters")

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    # django.contrib.admin, with the staff site that demands a second factor.
    "staff.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "staff.apps.StaffConfig",
    "djstripe",
    "billing",
    "entitlements",
    "audit",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.middleware.RequestIdMiddleware",
    "config.problems.ProblemDetailsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "staff.middleware.StaffSessionMiddleware",
    "config.middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a lockout into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# django-prometheus wraps the real backends so query counts and latencies reach /metrics.
_PROMETHEUS_DB_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ENGINE"] = _PROMETHEUS_DB_ENGINES.get(
    DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"]
)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind a PgBouncer in transaction mode (docs/deploy.md, Capacity): Django's server-side
# cursors (QuerySet.iterator()) need one session across transactions, which it does not keep.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False
)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default (make run): runserver's threads apply events inline (eager Celery).
    # SQLite's default deferred transactions fail at once with "database is locked" when a
    # reader turns writer while another thread writes; IMMEDIATE ones wait for the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache / Redis --------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Redis is only ever a fast path here: when it is down, cache calls must fail
                # fast and fall through to PostgreSQL rather than hang a webhook.
                "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.5),
                "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.5),
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "tollgate",
        }
    }
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # A broker that vanishes without closing its sockets (a network cut, a failover) must not
    # hang a worker's or the relay's read forever: reads give up after this (longer than the
    # worker's 1 s BRPOP), connects after 5 s, and TCP keepalive notices a dead peer.
    "socket_timeout": 10.0,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
}
# Redis restarts (docs/deploy.md, "Redis restarts"): the worker reconnects, at start-up too, for
# as long as it takes (a worker that exits anyway is restarted by its supervisor). Tasks that
# run when the connection drops finish and commit their work; their acknowledgement is lost
# with the connection and a later delivery of the task finds the event applied and skips it
# (cancelling them instead, Celery 6's default, would throw the work away).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A publish retries once, briefly, then gives up: the webhook has already stored the event (the
# requeue sweep queues it later), so a broker outage must not hold every acknowledgement for
# Celery's default three retries (measured: 0.6 s per request with Redis stopped).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
# Celery closes the database connection around every task unless told to reuse it. Tasks reuse
# it as web requests do instead (config/celery.py); Celery's own forced close then comes only
# once every this many tasks.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# --- Auth, sessions, security ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The proxies in front of Tollgate (addresses or CIDRs, one per hop, the hop nearest the client
# first): X-Forwarded-For is believed only through them (config/client.py). Empty: REMOTE_ADDR.
try:
    TRUSTED_PROXIES = trusted_proxies_parse(env.list("TRUSTED_PROXIES", default=[]))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
# django-axes counts failed sign-ins (admin and API). A name that is an account locks that
# account, from any address; unknown names throttle only the address they come from, so a
# stranger's guesses never lock real staff out (staff/lockout.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("AXES_COOLOFF_SECONDS", default=900))
AXES_LOCKOUT_PARAMETERS = "staff.lockout.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "config.client.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "staff.views.locked_out"
AXES_VERBOSE = False
# Staff must verify a second factor (TOTP or a backup code) in every session. Only a local
# demo with DEBUG on may relax it: refused here, since gunicorn never runs system checks.
ADMIN_REQUIRE_2FA = env.bool("ADMIN_REQUIRE_2FA", default=True)
if not ADMIN_REQUIRE_2FA and not DEBUG:
    raise ImproperlyConfigured(
        "ADMIN_REQUIRE_2FA=false is only allowed with DEBUG on (a local demo): staff must "
        "verify a second factor everywhere else"
    )
OTP_TOTP_ISSUER = "Tollgate"
STAFF_SESSION_IDLE_SECONDS = env.int("STAFF_SESSION_IDLE_SECONDS", default=15 * 60)
STAFF_SESSION_MAX_SECONDS = env.int("STAFF_SESSION_MAX_SECONDS", default=8 * 3600)
# Staff API tokens (the API's second factor, made in the admin): their longest lifetime.
STAFF_API_TOKEN_MAX_DAYS = env.int("STAFF_API_TOKEN_MAX_DAYS", default=90)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Health and metrics are probed over plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# /metrics (config/health.py): with a token, only a request bearing it is served; without one,
# it is served only where enabled (development by default), else it answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=not PRODUCTION or bool(METRICS_TOKEN))

# Stripe webhooks are at most a few KiB; anything over 1 MiB is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Stripe / dj-stripe ---------------------------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="sk_test_tollgate_offline_placeholder")
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
STRIPE_API_VERSION = env.str("STRIPE_API_VERSION", default="2026-05-27.dahlia")
# Points the stripe SDK at another host: the offline fake in tests and benchmarks.
if env.str("STRIPE_API_HOST", default=""):
    STRIPE_API_HOST = env.str("STRIPE_API_HOST")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# --- Audit ----------------------------------------------------------------------------------
AUDIT_CHECKPOINT_KEY = env.str("AUDIT_CHECKPOINT_KEY", default="dev-audit-checkpoint-key")

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The token class first: DRF answers 401 with its WWW-Authenticate when credentials are
    # missing or wrong (403 would follow from the session class, which has no challenge).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "staff.api_auth.StaffTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "config.problems.drf_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate API",
    "DESCRIPTION": "Entitlements and billing API of Tollgate.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Logging: structured JSON, one line per event, request id on every line -----------------
LOGGING = {"level": env.str("LOG_LEVEL", default="INFO")}
LOGGING_CONFIG = "config.logging.configure"

# === billing (webhook ingress) ================================================================
# Every variable here is documented in docs/webhooks.md.
# Celery retries of one event before it becomes a dead letter; backoff doubles from the factor
# (seconds) up to the cap, with full jitter.
BILLING_EVENT_MAX_RETRIES = env.int("BILLING_EVENT_MAX_RETRIES", default=8)
BILLING_RETRY_BACKOFF_SECONDS = env.int("BILLING_RETRY_BACKOFF_SECONDS", default=2)
BILLING_RETRY_BACKOFF_MAX_SECONDS = env.int("BILLING_RETRY_BACKOFF_MAX_SECONDS", default=600)
# The dj-stripe mirror (Event.process, which calls Stripe's API) retries on its own schedule.
BILLING_MIRROR_MAX_RETRIES = env.int("BILLING_MIRROR_MAX_RETRIES", default=12)
# Off with the offline placeholder key: there is no Stripe account to mirror from.
BILLING_STRIPE_MIRROR_ENABLED = env.bool(
    "BILLING_STRIPE_MIRROR_ENABLED",
    default=STRIPE_SECRET_KEY != "sk_test_tollgate_offline_placeholder"  # noqa: S105
    or bool(env.str("STRIPE_API_HOST", default="")),
)
# The Redis fast path for duplicates of applied events: off, the request makes no Redis round
# trip (measured in bench/notes.md: it cost each new event about as much as its insert).
BILLING_WEBHOOK_DEDUP_CACHE = env.bool("BILLING_WEBHOOK_DEDUP_CACHE", default=False)
# Seconds an event id stays in the Redis fast path (PostgreSQL remains the authority).
BILLING_WEBHOOK_DEDUP_TTL = env.int("BILLING_WEBHOOK_DEDUP_TTL", default=7 * 24 * 3600)
# Seconds a web process reuses an endpoint's secrets before reading them again: a secret removed
# in another process stops being accepted within this time (0: read on every delivery).
BILLING_WEBHOOK_ENDPOINT_CACHE_SECONDS = env.int(
    "BILLING_WEBHOOK_ENDPOINT_CACHE_SECONDS", default=5
)
# Idempotency-Key records are kept at least 24 hours (IETF draft); older ones are purged.
BILLING_IDEMPOTENCY_RETENTION_HOURS = max(
    24, env.int("BILLING_IDEMPOTENCY_RETENTION_HOURS", default=48)
)
CELERY_BEAT_SCHEDULE["billing-purge-idempotency-keys"] = {
    "task": "billing.tasks.purge_idempotency_keys",
    "schedule": 3600.0,
}
# Events neither applied nor dead this long after their last change lost their task (broker
# down at commit, worker killed) and are queued again; above the retry backoff cap.
BILLING_REQUEUE_STALE_AFTER_SECONDS = env.int("BILLING_REQUEUE_STALE_AFTER_SECONDS", default=900)
# The outbox relay (`manage.py billing_relay`, billing/relay.py) publishes stored events to
# Celery in batches of this many. Without a relay process to wake (SQLite has no LISTEN; eager
# Celery has no worker) the relay step runs inline, in the web process, after the insert.
BILLING_RELAY_BATCH_SIZE = env.int("BILLING_RELAY_BATCH_SIZE", default=500)
# Events applied per Celery task and per transaction (billing/batches.py): a customer's events
# stay together and in order; 1 applies every event in its own task, as before batching.
BILLING_APPLY_BATCH_SIZE = env.int("BILLING_APPLY_BATCH_SIZE", default=50)
# After a NOTIFY the relay waits this long before claiming, so the events right behind share
# its claim and batches (a trickle's events are applied this much later).
BILLING_RELAY_LINGER_SECONDS = env.float("BILLING_RELAY_LINGER_SECONDS", default=0.05)
BILLING_RELAY_INLINE = env.bool(
    "BILLING_RELAY_INLINE",
    default=CELERY_TASK_ALWAYS_EAGER or "postgresql" not in DATABASES["default"]["ENGINE"],
)
CELERY_BEAT_SCHEDULE["billing-requeue-stale-events"] = {
    "task": "billing.tasks.requeue_stale_events",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["billing-dead-letter-gauge"] = {
    "task": "billing.tasks.refresh_dead_letter_gauge",
    "schedule": 60.0,
}
# Refused webhook deliveries cost constant storage (billing/rejections.py): each client
# address may be refused this many times per window before it gets 429 and its refusals leave
# no delivery row; refused delivery rows (never their bodies) are kept this long; the audit
# trail gets one row per address, problem and minute from the flush task.
BILLING_WEBHOOK_REJECTION_LIMIT = env.int("BILLING_WEBHOOK_REJECTION_LIMIT", default=60)
BILLING_WEBHOOK_REJECTION_WINDOW_SECONDS = env.int(
    "BILLING_WEBHOOK_REJECTION_WINDOW_SECONDS", default=60
)
BILLING_REJECTED_DELIVERY_RETENTION_HOURS = env.int(
    "BILLING_REJECTED_DELIVERY_RETENTION_HOURS", default=168
)
CELERY_BEAT_SCHEDULE["billing-flush-rejection-counts"] = {
    "task": "billing.tasks.flush_rejection_counts",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["billing-purge-rejected-deliveries"] = {
    "task": "billing.tasks.purge_rejected_deliveries",
    "schedule": 3600.0,
}


# === entitlements =============================================================================
# Revoke Stripe-granted features on a full refund / a dispute (each can be turned off).
ENTITLEMENTS_REVOKE_ON_REFUND = env.bool("ENTITLEMENTS_REVOKE_ON_REFUND", default=True)
ENTITLEMENTS_REVOKE_ON_DISPUTE = env.bool("ENTITLEMENTS_REVOKE_ON_DISPUTE", default=True)
# Lifetime of a cached feature set; changes replace it at once, so this only bounds memory.
ENTITLEMENTS_CACHE_SECONDS = env.int("ENTITLEMENTS_CACHE_SECONDS", default=3600)
# Separation of duties: staff may not grant or revoke on their own account (unless this is on),
# and a manual grant creating more than this many entitlements (users x features) waits for a
# second staff member's approval (0: never).
ENTITLEMENTS_ALLOW_SELF_GRANT = env.bool("ENTITLEMENTS_ALLOW_SELF_GRANT", default=False)
ENTITLEMENTS_BULK_APPROVAL_THRESHOLD = env.int("ENTITLEMENTS_BULK_APPROVAL_THRESHOLD", default=10)
CELERY_BEAT_SCHEDULE["entitlements-record-lapses"] = {
    "task": "entitlements.record_lapses",
    "schedule": env.float("ENTITLEMENTS_LAPSE_INTERVAL_SECONDS", default=300.0),
}
# Support's blocks whose end date passed are lifted (Stripe's grants return) on the same beat.
CELERY_BEAT_SCHEDULE["entitlements-expire-blocks"] = {
    "task": "entitlements.expire_blocks",
    "schedule": env.float("ENTITLEMENTS_LAPSE_INTERVAL_SECONDS", default=300.0),
}
# Disputes parked until their charge's customer is known: retried against dj-stripe's mirror.
CELERY_BEAT_SCHEDULE["entitlements-retry-parked-disputes"] = {
    "task": "entitlements.retry_parked_disputes",
    "schedule": env.float("ENTITLEMENTS_DISPUTE_RETRY_INTERVAL_SECONDS", default=300.0),
}

# === audit ====================================================================================
# The group seeded with read-only access to the trail, payments and entitlements.
AUDIT_FINANCE_GROUP = env.str("AUDIT_FINANCE_GROUP", default="Finance")
# Rows per keyset chunk when verifying, exporting and archiving.
AUDIT_CHUNK_SIZE = env.int("AUDIT_CHUNK_SIZE", default=5000)
# Key of the HMAC that stands in for search terms in the trail; empty: derived from SECRET_KEY.
AUDIT_SEARCH_HASH_KEY = env.str("AUDIT_SEARCH_HASH_KEY", default="")
# Filtered admin lists count at most this many rows (COUNT over a LIMIT), never the table.
AUDIT_ADMIN_COUNT_LIMIT = env.int("AUDIT_ADMIN_COUNT_LIMIT", default=10000)
# The sealer (audit/sealing.py): rows per sealing transaction; beat's fallback interval (the
# `audit_seal` command is the main sealer and polls every --interval seconds).
AUDIT_SEAL_BATCH_SIZE = env.int("AUDIT_SEAL_BATCH_SIZE", default=5000)
# Ed25519 key that signs checkpoints (64 hex digits or PEM), or a file holding it; development
# falls back to a fixed, publicly known key (audit/signing.py). Production needs one of them.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
AUDIT_SIGNING_KEY_FILE = env.str("AUDIT_SIGNING_KEY_FILE", default="")
if PRODUCTION and not (AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE):
    raise ImproperlyConfigured("DJANGO_ENV=production requires AUDIT_SIGNING_KEY(_FILE)")
# Every checkpoint is also written here, one file each, never overwritten ("" = not written).
AUDIT_CHECKPOINT_DIR = env.str("AUDIT_CHECKPOINT_DIR", default="")
# ... and to this S3-compatible bucket (`name` or `name/prefix`; "" = not written), with a
# conditional PUT that never overwrites; credentials from boto3's standard chain.
AUDIT_CHECKPOINT_BUCKET = env.str("AUDIT_CHECKPOINT_BUCKET", default="")
AUDIT_CHECKPOINT_BUCKET_ENDPOINT_URL = env.str("AUDIT_CHECKPOINT_BUCKET_ENDPOINT_URL", default="")
# The witness's own Ed25519 key (`audit_witness`, run on another host): never the app's.
AUDIT_WITNESS_KEY = env.str("AUDIT_WITNESS_KEY", default="")
AUDIT_WITNESS_KEY_FILE = env.str("AUDIT_WITNESS_KEY_FILE", default="")
CELERY_BEAT_SCHEDULE["audit-seal"] = {
    "task": "audit.tasks.seal_trail",
    "schedule": env.float("AUDIT_SEAL_INTERVAL_SECONDS", default=10.0),
}
# How often Celery beat signs a checkpoint (bounds how many rows a tail cut could hide) and
# walks the whole chain.
CELERY_BEAT_SCHEDULE["audit-sign-checkpoint"] = {
    "task": "audit.tasks.sign_checkpoint",
    "schedule": env.float("AUDIT_CHECKPOINT_INTERVAL_SECONDS", default=3600.0),
}
CELERY_BEAT_SCHEDULE["audit-verify-chain"] = {
    "task": "audit.tasks.verify_chain",
    "schedule": env.float("AUDIT_VERIFY_INTERVAL_SECONDS", default=86400.0),
}
# The daily review (audit/review.py): beat reviews yesterday (UTC) at 00:30 UTC; a Finance
# reviewer works its findings and signs the day off (docs/audit.md#daily-review).
CELERY_BEAT_SCHEDULE["audit-daily-review"] = {
    "task": "audit.tasks.daily_review",
    "schedule": crontab(minute=30, hour=0),
}
CELERY_BEAT_SCHEDULE["audit-review-overdue-gauge"] = {
    "task": "audit.tasks.refresh_review_overdue_gauge",
    "schedule": 300.0,
}
# A day's rejected webhooks (or invalid signatures) are a spike above FACTOR x the mean of the
# BASELINE_DAYS before it, and above FLOOR.
AUDIT_REVIEW_SPIKE_FACTOR = env.float("AUDIT_REVIEW_SPIKE_FACTOR", default=3.0)
AUDIT_REVIEW_SPIKE_FLOOR = env.int("AUDIT_REVIEW_SPIKE_FLOOR", default=20)
AUDIT_REVIEW_BASELINE_DAYS = env.int("AUDIT_REVIEW_BASELINE_DAYS", default=7)
# Manual grants and revokes outside [START, END) UTC on Monday-Friday are flagged.
AUDIT_REVIEW_BUSINESS_START_HOUR = env.int("AUDIT_REVIEW_BUSINESS_START_HOUR", default=8)
AUDIT_REVIEW_BUSINESS_END_HOUR = env.int("AUDIT_REVIEW_BUSINESS_END_HOUR", default=18)
# More manual grants (or revokes) than this by one person in a day is flagged as bulk.
AUDIT_REVIEW_BULK_THRESHOLD = env.int("AUDIT_REVIEW_BULK_THRESHOLD", default=20)
# This many failed sign-ins in a day (or more) is flagged; any lockout is.
AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD = env.int("AUDIT_REVIEW_FAILED_SIGNIN_THRESHOLD", default=10)
# The newest checkpoint must be younger than this when the review runs (2 x the interval).
AUDIT_REVIEW_CHECKPOINT_MAX_AGE_SECONDS = env.float(
    "AUDIT_REVIEW_CHECKPOINT_MAX_AGE_SECONDS", default=7200.0
)
# A day still unsigned this many business days after it is overdue (dashboard, gauge, alert).
AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS = env.int("AUDIT_REVIEW_SIGNOFF_BUSINESS_DAYS", default=1)
# Sequence numbers kept per finding (the row count is kept in full).
AUDIT_REVIEW_MAX_LINKED = env.int("AUDIT_REVIEW_MAX_LINKED", default=1000)
# The staff access review (audit/access_review.py, PCI DSS 7.2.4): due this many days after the
# last completed one (182: every six months); beat keeps its overdue gauge current.
AUDIT_ACCESS_REVIEW_INTERVAL_DAYS = env.int("AUDIT_ACCESS_REVIEW_INTERVAL_DAYS", default=182)
CELERY_BEAT_SCHEDULE["audit-access-review-gauge"] = {
    "task": "audit.tasks.refresh_access_review_gauge",
    "schedule": 300.0,
}
