"""The jobs tests' fixtures the notification tests share: the fake member session, a credential, sent tasks."""

from tests.jobs.conftest import credential, fake_cluster, sent_tasks  # noqa: F401 - fixtures
