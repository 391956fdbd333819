"""Django's password forms, changed in one way: saving a new password revokes the user's API tokens.

Used by the member's password page and the admin's "change password" page. Not a signal: the revocation is
an explicit service call in the same transaction as the password.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AdminPasswordChangeForm, PasswordChangeForm
from django.db import transaction

from accounts import services


class TokenRevokingPasswordChangeForm(PasswordChangeForm):
    def save(self, commit: bool = True) -> Any:
        if not commit:
            return super().save(commit=False)
        with transaction.atomic():
            user = super().save(commit=True)
            services.revoke_all_api_tokens(user=user)
        return user


class TokenRevokingAdminPasswordChangeForm(AdminPasswordChangeForm):
    def save(self, commit: bool = True) -> Any:
        if not commit:
            return super().save(commit=False)
        with transaction.atomic():
            user = super().save(commit=True)
            services.revoke_all_api_tokens(user=user)
        return user
