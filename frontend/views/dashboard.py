"""PLACEHOLDER: being built in issue 7 (replace this whole module)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dashboard(request):
    return render(request, "frontend/home.html")
