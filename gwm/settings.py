"""gwm settings: one module, read from the environment, failing fast on bad values.

Embedded defaults (no environment at all): a SQLite file in WAL mode under
``GWM_DATA_DIR`` (default ``./data``), an in-memory Celery broker and
in-process workers. Distributed mode only changes ``DATABASE_URL`` and
``CELERY_BROKER_URL``.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gwm.kit import queues
from gwm.settings_edge import static_files, trusted_proxies

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("GWM_DATA_DIR", BASE_DIR / "data")).resolve()


def _private_data_dir() -> None:
    """The data dir holds the database, the secret key and CA files: owner only (0700)."""
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Someone else's directory: leave it as its owner set it.
    with contextlib.suppress(PermissionError):
        DATA_DIR.chmod(0o700)


def _private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600), or make it so.

    SQLite creates its -wal and -shm files with the database file's mode, so
    they are private too.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    with contextlib.suppress(PermissionError):
        path.chmod(0o600)


def _secret_key() -> str:
    """The key from the environment, or one generated once and kept in the data dir.

    Generating it keeps `make demo` free of setup while never shipping a key in
    the repository; a deployment sets ``GWM_SECRET_KEY`` itself.
    """
    from_env = os.environ.get("GWM_SECRET_KEY")
    if from_env:
        return from_env
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    _private_data_dir()
    key = secrets.token_urlsafe(50)
    _private_file(key_file)
    key_file.write_text(key)
    return key


SECRET_KEY = _secret_key()
# Earlier secret keys, newest first (docs/keys.md): what they signed still verifies,
# and RAPI passwords encrypted under keys derived from them still decrypt.
SECRET_KEY_FALLBACKS = _env_list("GWM_SECRET_KEY_FALLBACKS", "")


def _encryption_keys() -> list[str]:
    """Fernet keys for secrets at rest, newest first; empty: derived from the secret keys.

    Setting both variables is refused rather than letting one win: the one that
    lost would hold a key silently dropped, and what it encrypted unreadable.
    """
    from gwm.kit.crypto import encryption_keys_check

    many = os.environ.get("GWM_ENCRYPTION_KEYS", "").strip()
    one = os.environ.get("GWM_ENCRYPTION_KEY", "").strip()
    if many and one:
        raise ImproperlyConfigured(
            "GWM_ENCRYPTION_KEYS and GWM_ENCRYPTION_KEY are both set: keep only "
            "GWM_ENCRYPTION_KEYS, with the key of GWM_ENCRYPTION_KEY in its list"
        )
    if one:
        return encryption_keys_check([one], name="GWM_ENCRYPTION_KEY")
    keys = _env_list("GWM_ENCRYPTION_KEYS", "")
    if many and not keys:
        raise ImproperlyConfigured("GWM_ENCRYPTION_KEYS is set but lists no key")
    return encryption_keys_check(keys, name="GWM_ENCRYPTION_KEYS")


GWM_ENCRYPTION_KEYS = _encryption_keys()
DEBUG = _env_bool("GWM_DEBUG", False)
ALLOWED_HOSTS = _env_list("GWM_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("GWM_CSRF_TRUSTED_ORIGINS", "")
# The reverse proxies (addresses or networks) whose X-Forwarded-For and
# X-Forwarded-Proto headers gwm believes (gwm.serving); empty: none, the peer of the
# connection is the client. docs/deployment.md, "Behind a reverse proxy".
GWM_TRUSTED_PROXIES = trusted_proxies(_env_list("GWM_TRUSTED_PROXIES", ""))
# Behind TLS (docs/deployment.md): the admin's session and CSRF cookies only over HTTPS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_bool("GWM_SECURE_COOKIES", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "gwm.accounts",
    "gwm.clusters",
    "gwm.events",
    "gwm.operations",
]

MIDDLEWARE = [
    # Django's security, common and clickjacking middleware and gwm's problem bodies.
    "gwm.middleware.EdgeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# What /api/ requests pass through when served (gwm.asgi): bearer tokens need no
# sessions, CSRF or messages. The test client runs MIDDLEWARE, which starts the same.
GWM_API_MIDDLEWARE = MIDDLEWARE[:1]

ROOT_URLCONF = "gwm.urls"
ASGI_APPLICATION = "gwm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _database() -> dict[str, object]:
    url = os.environ.get("DATABASE_URL")
    if not url:
        _private_data_dir()
        _private_file(DATA_DIR / "gwm.sqlite3")
        url = f"sqlite:///{DATA_DIR / 'gwm.sqlite3'}"
    try:
        config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=0))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write
        # lock at BEGIN so two writers queue instead of failing mid-transaction.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # Tests run on a file too (not :memory:), so worker threads in
        # integration tests see committed rows exactly as in production.
        # One file per test process, so two test runs in one checkout never share it.
        config["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # A pool per process (psycopg_pool): a request or task borrows a connection
        # instead of opening one (connect and authenticate cost more than a cached read).
        # Added to what the URL's query gave (``?sslmode=require``), not instead of it.
        options = dict(config.get("OPTIONS") or {})  # type: ignore[call-overload]
        options["pool"] = {
            "min_size": 1,
            "max_size": _env_int("GWM_DB_POOL_SIZE", 20),
            "timeout": 20,
        }
        config["OPTIONS"] = options
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL engine {config['ENGINE']} is not supported: use sqlite or postgresql"
        )
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Served by WhiteNoise from the API processes (GWM_SERVE_STATIC=0: by a proxy in front).
STATIC_ROOT, WHITENOISE_USE_FINDERS, STORAGES = static_files(
    os.environ.get("GWM_STATIC_ROOT", ""), DATA_DIR
)
GWM_SERVE_STATIC = _env_bool("GWM_SERVE_STATIC", True)
if GWM_SERVE_STATIC:
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")


# Celery: the queue is only a doorbell (tasks take ids and re-read the database;
# docs/architecture.md). Services ring tasks by name; these modules define them.
CELERY_IMPORTS = ("gwm.operations.tasks", "gwm.sync.tasks", "gwm.events.tasks")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queues the doorbells go to, one per kind of work (gwm.kit.queues), all named
# after this prefix: one broker can then serve several deployments, or test runs,
# without them taking each other's work.
GWM_CELERY_QUEUE = os.environ.get("GWM_CELERY_QUEUE", "") or "gwm"
CELERY_TASK_DEFAULT_QUEUE = queues.queue_name(GWM_CELERY_QUEUE, "operations")
CELERY_TASK_QUEUES = queues.task_queues(GWM_CELERY_QUEUE)
CELERY_TASK_ROUTES = queues.task_routes(GWM_CELERY_QUEUE)

# The sync scheduler: one cheap tick that enqueues the clusters whose tiers are due.
CELERY_BEAT_SCHEDULE = {
    # A tick is one indexed query; 0.25 s keeps "due" close to "started".
    "dispatch-due-syncs": {"task": "sync.dispatch_due_syncs", "schedule": 0.25},
    "sweep-operations": {"task": "operations.sweep", "schedule": 5.0},
    "purge-old-jobs": {"task": "operations.purge_old_jobs", "schedule": 3600.0},
    "purge-old-changes": {"task": "events.purge_old_changes", "schedule": 3600.0},
    # The webhook fan-out and delivery are rung after every commit that writes changes;
    # this tick only catches what a lost doorbell or a retry's due time left waiting.
    "deliver-webhooks": {"task": "events.deliver_webhooks", "schedule": 2.0},
}
# The change feed keeps this many days of changes; a cursor older than that answers 410.
GWM_CHANGES_RETENTION_DAYS = _env_int("GWM_CHANGES_RETENTION_DAYS", 7)
# Check every event served against its JSON Schema (the test suite turns it on).
GWM_VALIDATE_EVENTS = _env_bool("GWM_VALIDATE_EVENTS", False)
# Check every cached read's JSON against its declared response schema before sending it
# (the test suite turns it on; for a list of 100 full instances it costs more than the query).
GWM_VALIDATE_RESPONSES = _env_bool("GWM_VALIDATE_RESPONSES", False)
# Webhook and hook targets in these networks are allowed although they are loopback,
# private or link-local (comma-separated CIDRs; empty: none of those).
GWM_WEBHOOK_ALLOWED_NETWORKS = _env_list("GWM_WEBHOOK_ALLOWED_NETWORKS", "")
# Multiplies every retry delay (tests run the day-long schedule in seconds).
GWM_WEBHOOK_RETRY_SCALE = float(os.environ.get("GWM_WEBHOOK_RETRY_SCALE", "1.0"))
GWM_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("GWM_WEBHOOK_TIMEOUT_SECONDS", "10"))
# A full event larger than this goes out thin (its id, type and resource; "truncated").
GWM_WEBHOOK_MAX_PAYLOAD_BYTES = _env_int("GWM_WEBHOOK_MAX_PAYLOAD_BYTES", 256 * 1024)
# An old signing secret stays valid this long after a rotation.
GWM_WEBHOOK_SECRET_OVERLAP_HOURS = _env_int("GWM_WEBHOOK_SECRET_OVERLAP_HOURS", 24)
# Streams: a heartbeat comment (carrying the current seq) this often, and how many
# events a client may fall behind before it is disconnected.
GWM_STREAM_HEARTBEAT_SECONDS = float(os.environ.get("GWM_STREAM_HEARTBEAT_SECONDS", "15"))
GWM_STREAM_BUFFER_EVENTS = _env_int("GWM_STREAM_BUFFER_EVENTS", 1000)
GWM_JOB_RETENTION_DAYS = _env_int("GWM_JOB_RETENTION_DAYS", 90)
# How long a claim on a job lasts; a worker that dies leaves the job to the sweeper
# once this has passed. A live worker's lease keeper renews its claims every third
# of it (gwm.kit.lease), and a submission renews its claim before it sends.
GWM_JOB_LEASE_SECONDS = _env_int("GWM_JOB_LEASE_SECONDS", 30)
if GWM_JOB_LEASE_SECONDS < 2:
    raise ImproperlyConfigured(f"GWM_JOB_LEASE_SECONDS={GWM_JOB_LEASE_SECONDS} is below 2")
# Worker threads mostly wait on Ganeti (a tracked job holds one through each
# /2/jobs/ID/wait), so there are many more of them than cores.
GWM_WORKER_THREADS = _env_int("GWM_WORKER_THREADS", 16)

GWM_EMBEDDED = CELERY_BROKER_URL.startswith("memory://")
# API processes `gwm serve` runs (embedded mode runs its worker in one more process).
# How long an API process reuses a token it read (each process; revocations and user
# changes made through gwm empty it at once). 0 reads the token on every request.
GWM_TOKEN_CACHE_SECONDS = float(os.environ.get("GWM_TOKEN_CACHE_SECONDS", "1.0"))
# Threads each API process keeps for requests' synchronous work (gwm.kit.asgi_threads);
# more are made while more requests run at once, and let go afterwards.
GWM_REQUEST_THREADS = _env_int("GWM_REQUEST_THREADS", 8)
GWM_API_PROCESSES = _env_int("GWM_API_PROCESSES", max(2, min(4, os.cpu_count() or 1)))
# Set by `gwm serve` for the processes it starts, never by hand: where its processes
# wake each other's waiters (SQLite has no NOTIFY), and, in its API processes only,
# the embedded worker's doorbell socket (gwm.kit.localbus).
GWM_WAKE_DIR = os.environ.get("GWM_WAKE_DIR", "")
GWM_DOORBELL_SOCKET = os.environ.get("GWM_DOORBELL_SOCKET", "")
if GWM_EMBEDDED:
    # The in-memory transport is polled; kombu's default of 1 s would add up to
    # a second to every doorbell.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.05}

LOG_LEVEL = os.environ.get("GWM_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"GWM_LOG_LEVEL={LOG_LEVEL!r} is not a log level")

# Plain lines (embedded mode's default) or JSON (distributed mode's), both with the
# request id, job and cluster of each line: GWM_LOG_FORMAT (gwm.settings_observability).
from gwm.settings_observability import log_format, logging_config  # noqa: E402

GWM_LOG_FORMAT = log_format(embedded=GWM_EMBEDDED)
LOGGING = logging_config(level=LOG_LEVEL, kind=GWM_LOG_FORMAT)

# Every RAPI read gwm makes gives up after this long (gwm.ganeti.connect), so no
# worker hangs on a cluster that stopped answering; keep it below GWM_JOB_LEASE_SECONDS.
GWM_HTTP_TIMEOUT_SECONDS = _env_int("GWM_HTTP_TIMEOUT_SECONDS", 30)
if GWM_HTTP_TIMEOUT_SECONDS < 1:
    raise ImproperlyConfigured(f"GWM_HTTP_TIMEOUT_SECONDS={GWM_HTTP_TIMEOUT_SECONDS} is below 1")


# -- identity: tokens, logins, roles (docs/permissions.md) -----------------------------


def _token_peppers() -> dict[int, str]:
    """``GWM_TOKEN_PEPPERS="2:new-secret,1:old-secret"``: numbered keys for token hashes.

    New tokens use the highest number; tokens under any listed number still work.
    Without the variable, pepper 1 is derived from the secret key.
    """
    raw = os.environ.get("GWM_TOKEN_PEPPERS", "")
    if not raw:
        return {1: hmac.new(SECRET_KEY.encode(), b"gwm token pepper", "sha256").hexdigest()}
    found: dict[int, str] = {}
    for item in raw.split(","):
        number, sep, key = item.strip().partition(":")
        if not sep or not number.isdigit() or int(number) < 1 or len(key) < 16:
            raise ImproperlyConfigured(
                "GWM_TOKEN_PEPPERS: each item is <number>:<key>, number >= 1, key >= 16 characters"
            )
        found[int(number)] = key
    return found


GWM_TOKEN_PEPPERS = _token_peppers()
GWM_TOKEN_DEFAULT_DAYS = _env_int("GWM_TOKEN_DEFAULT_DAYS", 30)
GWM_TOKEN_MAX_DAYS = _env_int("GWM_TOKEN_MAX_DAYS", 365)
GWM_SERVICE_TOKEN_MAX_DAYS = _env_int("GWM_SERVICE_TOKEN_MAX_DAYS", 3650)
if not 1 <= GWM_TOKEN_DEFAULT_DAYS <= GWM_TOKEN_MAX_DAYS <= GWM_SERVICE_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured(
        "need 1 <= GWM_TOKEN_DEFAULT_DAYS <= GWM_TOKEN_MAX_DAYS <= GWM_SERVICE_TOKEN_MAX_DAYS"
    )
# Failed logins within the window that lock a user name, or a source address, out (429).
GWM_LOGIN_WINDOW_SECONDS = _env_int("GWM_LOGIN_WINDOW_SECONDS", 300)
GWM_LOGIN_MAX_FAILURES_PER_USER = _env_int("GWM_LOGIN_MAX_FAILURES_PER_USER", 5)
GWM_LOGIN_MAX_FAILURES_PER_ADDRESS = _env_int("GWM_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
# The role bound to whoever creates an instance, on that instance ("" binds nothing).
GWM_CREATOR_ROLE = os.environ.get("GWM_CREATOR_ROLE", "instance-owner")

# LDAP and Keystone, each off unless configured (docs/permissions.md).
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
from gwm.settings_keystone import *  # noqa: E402, F403
from gwm.settings_ldap import *  # noqa: E402, F403

if GWM_LDAP_ENABLED:  # noqa: F405
    # After gwm's own users: a directory entry never takes over a local account.
    AUTHENTICATION_BACKENDS.append(LDAP_BACKEND)  # noqa: F405


# -- observability: /metrics and its figures (docs/observability.md) ------------------

INSTALLED_APPS += ["gwm.observability"]
# GWM_METRICS_TOKEN (who may scrape /metrics), GWM_METRICS_DIR (multiprocess mode).
from gwm.settings_observability import *  # noqa: E402, F403
