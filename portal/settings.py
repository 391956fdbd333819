"""Django settings, built from the typed `PORTAL_*` environment (see portal/config.py)."""

from __future__ import annotations

from portal.config import load_settings
from portal.logs import build_logging_config

ENV = load_settings()

SECRET_KEY = ENV.secret_key.get_secret_value()
DEBUG = ENV.debug
ALLOWED_HOSTS = ENV.allowed_hosts
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins
ENVIRONMENT = ENV.environment
IS_PRODUCTION = ENVIRONMENT == "production"
TRUSTED_PROXY_COUNT = ENV.trusted_proxy_count

INSTALLED_APPS = [
    "accounts",  # first: its `changepassword` (which also revokes API tokens) replaces django.contrib.auth's
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "portal",
    "ninja",
    "django_htmx",
    "axes",
    "clusters",
    "templates_app",
    "jobs",
    "accounting",
    "frontend",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.UnstorableInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.RequestContextMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "portal.middleware.PortalErrorMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

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
                "frontend.context_processors.notifications_poll",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": ENV.db_host,
        "PORT": ENV.db_port,
        "NAME": ENV.db_name,
        "USER": ENV.db_user,
        "PASSWORD": ENV.db_password.get_secret_value(),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "frontend:login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "frontend:login"

# django-axes: lock an account+address pair out after repeated failed logins.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The client's own address, never one a client can write (portal/client_address.py): behind a proxy, axes
# keyed on REMOTE_ADDR would lock everyone out together.
AXES_CLIENT_IP_CALLABLE = "portal.client_address.client_address"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = IS_PRODUCTION
CSRF_COOKIE_SECURE = IS_PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if TRUSTED_PROXY_COUNT:
    # The TLS-terminating proxy says whether the client spoke HTTPS; without one nobody may say so.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if IS_PRODUCTION:
    # Members paste private keys: HTTPS only, and browsers told to remember that for a year.
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]  # the container's own health check speaks plain HTTP
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is a promise about the whole domain that only its owner can make.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = ENV.static_root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": ENV.redis_url,
        "KEY_PREFIX": "portal",
    }
}

# Uploads go to disk in chunks (never whole in memory); see jobs/file_store.py.
FILE_STORE = ENV.file_store
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 20

# Request bodies: form fields and JSON (what Django holds in memory, `request.body`) stop at 2 MiB, far
# above a template body or a job's values; file uploads are checked against the cluster's per-file limit
# and the member's quota from their declared length before Django writes a byte (jobs/services/uploads.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000  # the jobs list's bulk form posts up to 200 ids and must be told why not more
FILE_UPLOAD_PERMISSIONS = 0o600

# The file store's bounds (portal/config.py).
DOWNLOAD_MAX_BYTES = ENV.download_max_bytes
STORAGE_QUOTA_BYTES = ENV.storage_quota_bytes
STAGED_DOWNLOAD_TTL_HOURS = ENV.staged_download_ttl_hours
UPLOAD_PART_TTL_HOURS = ENV.upload_part_ttl_hours
VIEW_MAX_FRAMES = ENV.view_max_frames
VIEW_MAX_BYTES = ENV.view_max_bytes
VIEW_MAX_ATOMS = ENV.view_max_atoms
VIEW_INPUT_MAX_BYTES = ENV.view_input_max_bytes

CREDENTIAL_KEYS = [key.strip() for key in ENV.credential_keys.get_secret_value().split(",") if key.strip()]

# Celery (see portal/celery.py). Job state lives on the models; results are kept only for
# tasks that ask for them (ignore_result=False), briefly.
CELERY_BROKER_URL = ENV.redis_url
CELERY_RESULT_BACKEND = ENV.redis_url
CELERY_TASK_DEFAULT_QUEUE = ENV.celery_task_queue

# Notifications (notifications/): links in messages are absolute, from the portal's own address; mail goes through
# Django's SMTP backend (a real local SMTP server in demo and tests, scripts/services).
PORTAL_BASE_URL = ENV.base_url
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = ENV.email_host
EMAIL_PORT = ENV.email_port
EMAIL_HOST_USER = ENV.email_user
EMAIL_HOST_PASSWORD = ENV.email_password.get_secret_value()
EMAIL_USE_TLS = ENV.email_use_tls
EMAIL_USE_SSL = ENV.email_use_ssl
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = ENV.email_from
# How often an open page asks for new browser notifications (notifications.js reads it from the page).
NOTIFICATIONS_POLL_MS = 30_000

NINJA_DEFAULT_THROTTLE_RATES = {"auth": "600/min", "user": "1200/min", "anon": "120/min"}

LOGGING = build_logging_config(level=ENV.log_level, as_json=ENV.log_json)
