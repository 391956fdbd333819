"""The 3D view's panel on the job and pipeline pages: swapped in by htmx when the member opens it, so that the
viewer's scripts (NGL, `viewer.js`) load only then. POST (the owner) orders the view's preparation; GET shows
it as it is (a lab admin sees what the owner opened). The molecule and its frames come from the API.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from jobs import services
from jobs.access import access_job, can_act_on
from portal.errors import Forbidden, NotFound, PortalError


@login_required
@require_http_methods(["GET", "POST"])
def viewer_panel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_job(user=request.user, job_id=job_id)
    error = ""
    if request.method == "POST":
        try:
            services.request_view(user=request.user, job_id=job.pk, rebuild=request.POST.get("rebuild") == "1")
        except (NotFound, Forbidden):
            raise
        except PortalError as exc:
            error = exc.user_message
    context = {
        "job": job,
        "can_act": can_act_on(request.user, job),
        "error": error,
        "view_url": reverse("api:get_view", kwargs={"job_id": job.pk}),
        "panel_url": reverse("frontend:job_viewer", kwargs={"job_id": job.pk}),
    }
    return render(request, "frontend/_job_viewer_panel.html", context)
