from django import forms

EXPIRY_CHOICES = [(30, "30 days"), (90, "90 days"), (366, "1 year"), (0, "Never")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. 'analysis pipeline'.")
    expires_in_days = forms.TypedChoiceField(choices=EXPIRY_CHOICES, coerce=int, initial=90, label="Expires after")
