"""factory_boy factories for the portal's models."""

from __future__ import annotations

import factory

from accounts.models import User

MEMBER_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"member{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@lab.example")
    password = factory.django.Password(MEMBER_PASSWORD)
    is_active = True
    is_staff = False
