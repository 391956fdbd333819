# The portal's image: web, Celery worker and beat run from it (docker-compose.yml).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client rsync tcl8.6 && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 portal
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN pip install --no-cache-dir uv==0.13.9 && uv sync --frozen --no-dev
COPY . .
RUN PORTAL_SECRET_KEY=build-only-not-a-secret-build-only-x PORTAL_DB_PASSWORD=unused PORTAL_CREDENTIAL_KEYS=unused python manage.py collectstatic --noinput
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "3", "--threads", "4"]
