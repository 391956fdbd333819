"""Wiring of the NAMD portal: settings, urls, the Celery app and the one API."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
