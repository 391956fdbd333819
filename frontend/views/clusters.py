"""PLACEHOLDER: being built in issue 7 (replace this whole module)."""

from django.http import Http404


def cluster_list(request, **kwargs):
    raise Http404


def save_credential(request, **kwargs):
    raise Http404


def test_connection(request, **kwargs):
    raise Http404


def connection_status(request, **kwargs):
    raise Http404


def delete_credential(request, **kwargs):
    raise Http404
