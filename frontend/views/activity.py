"""PLACEHOLDER: being built in issue 7 (replace this whole module)."""

from django.http import Http404


def activity(request, **kwargs):
    raise Http404
