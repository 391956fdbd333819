"""PLACEHOLDER: being built in issue 7 (replace this whole module)."""

from django.http import Http404


def job_detail(request, **kwargs):
    raise Http404


def status_panel(request, **kwargs):
    raise Http404


def log_panel(request, **kwargs):
    raise Http404


def files_panel(request, **kwargs):
    raise Http404


def download_file(request, **kwargs):
    raise Http404


def download_status(request, **kwargs):
    raise Http404


def cancel(request, **kwargs):
    raise Http404


def restart(request, **kwargs):
    raise Http404


def clone(request, **kwargs):
    raise Http404


def delete(request, **kwargs):
    raise Http404
