"""PLACEHOLDER: being built in issue 7 (replace this whole module)."""

from django.http import Http404


def job_list(request, **kwargs):
    raise Http404


def bulk_action(request, **kwargs):
    raise Http404


def job_row(request, **kwargs):
    raise Http404
