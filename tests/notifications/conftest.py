"""The jobs tests' fixtures the notification tests share (the fake member session, a credential, sent tasks), and a
test client logged in as the member."""

import pytest

from tests.jobs.conftest import credential, fake_cluster, sent_tasks  # noqa: F401 - fixtures


@pytest.fixture
def logged_in(client, member):
    client.force_login(member)
    return client
