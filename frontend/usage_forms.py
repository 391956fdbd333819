"""The usage page's filters: whose usage (a lab admin may choose the lab's), how to group it, the period."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from accounting.access import UsageScope, default_scope
from accounting.selectors import GroupBy, Period, period
from accounts.models import User
from portal.errors import InvalidInput

GROUP_LABELS = {
    GroupBy.MONTH: "Month",
    GroupBy.MEMBER: "Member",
    GroupBy.CLUSTER: "Cluster",
    GroupBy.PARTITION: "Partition",
}


class UsageFilterForm(forms.Form):
    scope = forms.ChoiceField(
        label="Whose", choices=[(UsageScope.MINE.value, "Mine"), (UsageScope.LAB.value, "The lab's")], required=False
    )
    group_by = forms.ChoiceField(
        label="Group by", choices=[(key.value, label) for key, label in GROUP_LABELS.items()], required=False
    )
    since = forms.DateField(label="Ended on or after", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="Ended on or before", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data: QueryDict, *, user: User) -> None:
        shown = data.copy()  # what is shown unless asked: the selects then say what the results are
        shown.setdefault("scope", default_scope(user).value)
        shown.setdefault("group_by", GroupBy.MONTH.value)
        super().__init__(shown)
        self.user = user
        if not user.is_lab_admin:
            del self.fields["scope"]  # a member sees their own only

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            cleaned["period"] = period(cleaned.get("since"), cleaned.get("until"))
        except InvalidInput as exc:
            raise forms.ValidationError(f"{exc.user_message} ({exc.code})", code=exc.code) from exc
        return cleaned

    @property
    def chosen_scope(self) -> UsageScope:
        return UsageScope(self.cleaned_data.get("scope") or default_scope(self.user))

    @property
    def chosen_group_by(self) -> GroupBy:
        return GroupBy(self.cleaned_data.get("group_by") or GroupBy.MONTH)

    @property
    def chosen_period(self) -> Period:
        return self.cleaned_data["period"]
