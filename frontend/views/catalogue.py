"""PLACEHOLDER: being built in issue 7 (replace this whole module)."""

from django.http import Http404


def catalogue(request, **kwargs):
    raise Http404


def template_detail(request, **kwargs):
    raise Http404
