"""factory_boy factories for the portal's models."""

from __future__ import annotations

import factory

from accounts.models import User
from clusters.models import ClusterProfile

MEMBER_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"member{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@lab.example")
    password = factory.django.Password(MEMBER_PASSWORD)
    is_active = True
    is_staff = False


class ClusterProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClusterProfile

    name = factory.Sequence(lambda n: f"Cluster {n}")
    slug = factory.Sequence(lambda n: f"cluster-{n}")
    login_host = "login.cluster.example"
    login_port = 22
    is_active = True
