# The portal's image: web (gunicorn), the Celery workers (run_workers) and beat run from it (docker-compose.yml).
# PYTHON_IMAGE: the official python:3.11-slim-bookworm for real deployments; the compose test builds on a
# locally made Debian 12 image with Debian's Python 3.11 (scripts/compose/base-image), as no image can be
# pulled there. Everything the portal needs at run time is here: the SSH client and rsync (clusters), Tcl
# 8.6 through tkinter (the NAMD config reader), the CA bundle, pg_dump/pg_restore (backups).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv UV_LINK_MODE=copy \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PATH=/opt/venv/bin:$PATH
# tkinter: Debian's python3 takes python3-tk; the official image's own Python has _tkinter and needs the Tk library.
RUN if [ "$(python3 -c 'import sys; print(sys.prefix)')" = /usr ]; then tk=python3-tk; else tk=libtk8.6; fi \
    && apt-get update && apt-get install -y --no-install-recommends \
        openssh-client rsync tcl8.6 "$tk" ca-certificates postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -c "import tkinter; tkinter.Tcl().eval('info patchlevel')" \
    && useradd --create-home --uid 10001 portal
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --quiet uv==0.13.9 \
    && uv sync --frozen --no-dev --no-install-project --python /opt/venv/bin/python
COPY . .
# Collected as production serves them (whitenoise's compressed manifest storage): hashed names and a manifest.
RUN PORTAL_ENVIRONMENT=production PORTAL_SECRET_KEY=build-only-not-a-secret-build-only-x PORTAL_DB_PASSWORD=unused PORTAL_CREDENTIAL_KEYS=unused \
    python manage.py collectstatic --noinput -v 0 \
    && chmod -R a+rX /app && mkdir -p /srv/portal-files && chown portal:portal /srv/portal-files
USER portal
EXPOSE 8000
CMD ["gunicorn", "-c", "python:portal.gunicorn_conf", "portal.wsgi:application"]
