"""The one access rule for API tokens, as an object loader and as a queryset, agree."""

from __future__ import annotations

import pytest

from accounts.access import access_api_token, visible_api_tokens
from accounts.services import create_api_token
from portal.errors import NotFound

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("who", "can_see"),
    [("owner", True), ("other", False), ("admin", True), ("inactive_owner", False), ("missing", False)],
)
def test_access_api_token(who, can_see, member, other_member, lab_admin) -> None:
    token = create_api_token(user=member, name="t", expires_in_days=30).token
    viewer = {"owner": member, "other": other_member, "admin": lab_admin, "inactive_owner": member, "missing": member}[
        who
    ]
    token_id = token.pk + 1000 if who == "missing" else token.pk
    if who == "inactive_owner":
        member.is_active = False
        member.save(update_fields=["is_active"])
    in_queryset = visible_api_tokens(viewer).filter(pk=token_id).exists()
    if can_see:
        assert access_api_token(user=viewer, token_id=token_id).pk == token.pk
    else:
        with pytest.raises(NotFound) as raised:
            access_api_token(user=viewer, token_id=token_id)
        assert raised.value.code == "TOKEN_NOT_FOUND"
    assert in_queryset is can_see
