"""The NAMD job, its history, its lifecycle services and Celery tasks."""
