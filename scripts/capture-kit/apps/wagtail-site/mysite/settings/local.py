from .base import BASE_DIR

SECRET_KEY = "wa-capture-not-a-secret-3f9c1e7d2b"
ALLOWED_HOSTS = ["10.83.0.2", "localhost", "127.0.0.1"]
WAGTAIL_SITE_NAME = "Field Notes"
WAGTAILADMIN_BASE_URL = "http://10.83.0.2"
WAGTAILAPI_BASE_URL = "http://10.83.0.2"
# the read API's page size cap (default 20) raised so that a whole-site export is possible
WAGTAILAPI_LIMIT_MAX = 500
# SQLite under concurrent editors: wait for locks, take the write lock up front, WAL
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
# Django 5.2 hashes with PBKDF2-SHA256 at 1,000,000 iterations; on the shared 2-core rig
# that made each failed login cost ~1 s of CPU and starved every other client during
# the login attacks, so this site uses the same hasher at 150,000 iterations.
PASSWORD_HASHERS = ["mysite.hashers.RigPBKDF2PasswordHasher"]
# request errors (500s) go to gunicorn's error log
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
