"""PLACEHOLDER: being built in issue 7 (replace this whole module)."""

from django.http import Http404


def choose_template(request, **kwargs):
    raise Http404


def job_form(request, **kwargs):
    raise Http404


def check_form(request, **kwargs):
    raise Http404


def preview(request, **kwargs):
    raise Http404


def inputs(request, **kwargs):
    raise Http404


def inputs_status(request, **kwargs):
    raise Http404


def submit(request, **kwargs):
    raise Http404
