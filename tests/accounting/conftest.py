from tests.jobs.conftest import credential, fake_cluster, sent_tasks

__all__ = ["credential", "fake_cluster", "sent_tasks"]
