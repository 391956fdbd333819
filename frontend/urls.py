from django.contrib.auth import views as auth_views
from django.urls import path, re_path, reverse_lazy

from accounts.forms import TokenRevokingPasswordChangeForm
from frontend.views import (
    account,
    activity,
    catalogue,
    clusters,
    dashboard,
    job_detail,
    job_list,
    job_viewer,
    notifications,
    pipeline_wizard,
    pipelines,
    sweep_wizard,
    sweeps,
    usage,
    wizard,
)

app_name = "frontend"
SWEEP_FORM = r"^sweeps/new/(?P<kind>template|protocol)/(?P<slug>[-a-zA-Z0-9_]+)/"  # what is swept, and its slug

urlpatterns = [
    path("", dashboard.dashboard, name="home"),
    # Jobs list (htmx asks for its rows again while jobs are active), bulk cancel/delete.
    path("jobs/", job_list.job_list, name="job_list"),
    path("jobs/bulk/", job_list.bulk_action, name="job_bulk"),
    # New job wizard: template → values and resources (validated and previewed live) → inputs → submit.
    path("jobs/new/", wizard.choose_template, name="wizard"),
    path("jobs/new/<slug:slug>/", wizard.job_form, name="wizard_form"),
    path("jobs/new/<slug:slug>/check/", wizard.check_form, name="wizard_check"),
    path("jobs/new/<slug:slug>/preview/", wizard.preview, name="wizard_preview"),
    path("jobs/<int:job_id>/inputs/", wizard.inputs, name="wizard_inputs"),
    path("jobs/<int:job_id>/inputs/status/", wizard.inputs_status, name="wizard_inputs_status"),
    path("jobs/<int:job_id>/inputs/values/", wizard.use_input_values, name="wizard_use_input_values"),
    path("jobs/<int:job_id>/submit/", wizard.submit, name="job_submit"),
    # Job detail and its live parts.
    path("jobs/<int:job_id>/", job_detail.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/status/", job_detail.status_panel, name="job_status"),
    path("jobs/<int:job_id>/log/<str:kind>/", job_detail.log_panel, name="job_log"),
    path("jobs/<int:job_id>/files/", job_detail.files_panel, name="job_files"),
    path("jobs/<int:job_id>/viewer/", job_viewer.viewer_panel, name="job_viewer"),
    path("jobs/<int:job_id>/files/download/", job_detail.download_file, name="job_download"),
    path("jobs/<int:job_id>/downloads/<int:download_id>/", job_detail.download_status, name="job_download_status"),
    path("jobs/<int:job_id>/cancel/", job_detail.cancel, name="job_cancel"),
    path("jobs/<int:job_id>/restart/", job_detail.restart, name="job_restart"),
    path("jobs/<int:job_id>/next-stage/", job_detail.next_stage, name="job_next_stage"),
    path("jobs/<int:job_id>/clone/", job_detail.clone, name="job_clone"),
    path("jobs/<int:job_id>/delete/", job_detail.delete, name="job_delete"),
    # Pipeline runs: the protocol wizard (protocol → values, resources, live preview of every step → the inputs
    # page of the run's first step, whose submit queues the run), the list, a run's page and its actions.
    path("pipelines/", pipelines.pipeline_list, name="pipeline_list"),
    path("pipelines/new/", pipeline_wizard.choose_protocol, name="pipeline_wizard"),
    path("pipelines/new/<slug:slug>/", pipeline_wizard.pipeline_form, name="pipeline_wizard_form"),
    path("pipelines/new/<slug:slug>/check/", pipeline_wizard.check_form, name="pipeline_wizard_check"),
    path("pipelines/new/<slug:slug>/preview/", pipeline_wizard.preview, name="pipeline_wizard_preview"),
    path("pipelines/<int:pipeline_id>/", pipelines.pipeline_detail, name="pipeline_detail"),
    path("pipelines/<int:pipeline_id>/live/", pipelines.live_panel, name="pipeline_live"),
    path("pipelines/<int:pipeline_id>/submit/", pipelines.submit, name="pipeline_submit"),
    path("pipelines/<int:pipeline_id>/cancel/", pipelines.cancel, name="pipeline_cancel"),
    path("pipelines/<int:pipeline_id>/resume/", pipelines.resume, name="pipeline_resume"),
    path("pipelines/<int:pipeline_id>/clone/", pipelines.clone, name="pipeline_clone"),
    # Sweeps: a template's or a protocol's wizard as a sweep (what to sweep → values, resources and points, the
    # first point previewed → the sweep's page, where its inputs are uploaded once), the list, a sweep's page with
    # its rows (polled while a point moves) and its actions; the CSV and the plot are read from the sweeps API.
    path("sweeps/", sweeps.sweep_list, name="sweep_list"),
    path("sweeps/new/", sweep_wizard.choose, name="sweep_wizard"),
    re_path(f"{SWEEP_FORM}$", sweep_wizard.sweep_form, name="sweep_wizard_form"),
    re_path(f"{SWEEP_FORM}check/$", sweep_wizard.check_form, name="sweep_wizard_check"),
    re_path(f"{SWEEP_FORM}preview/$", sweep_wizard.preview, name="sweep_wizard_preview"),
    path("sweeps/<int:sweep_id>/", sweeps.sweep_detail, name="sweep_detail"),
    path("sweeps/<int:sweep_id>/live/", sweeps.live_panel, name="sweep_live"),
    path("sweeps/<int:sweep_id>/submit/", sweeps.submit, name="sweep_submit"),
    path("sweeps/<int:sweep_id>/cancel/", sweeps.cancel, name="sweep_cancel"),
    path("sweeps/<int:sweep_id>/retry/", sweeps.retry, name="sweep_retry"),
    # What the member wants to be told, and where (email, webhook, this browser).
    path("notifications/", notifications.preferences, name="notification_preferences"),
    # Clusters and the member's own credentials.
    path("usage/", usage.usage, name="usage"),
    path("clusters/", clusters.cluster_list, name="clusters"),
    path("clusters/<int:profile_id>/credential/", clusters.save_credential, name="credential_save"),
    path("clusters/credentials/<int:credential_id>/test/", clusters.test_connection, name="credential_test"),
    path("clusters/credentials/<int:credential_id>/status/", clusters.connection_status, name="credential_status"),
    path("clusters/credentials/<int:credential_id>/delete/", clusters.delete_credential, name="credential_delete"),
    # Templates catalogue (read-only).
    path("templates/", catalogue.catalogue, name="catalogue"),
    path("templates/<slug:slug>/", catalogue.template_detail, name="catalogue_detail"),
    # Activity: remote commands run in the member's name.
    path("activity/", activity.activity, name="activity"),
    # Account.
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(
            form_class=TokenRevokingPasswordChangeForm,
            template_name="frontend/password_change.html",
            success_url=reverse_lazy("frontend:password_change_done"),
        ),
        name="password_change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="frontend/password_change_done.html"),
        name="password_change_done",
    ),
    path("account/tokens/", account.tokens, name="tokens"),
    path("account/tokens/<int:token_id>/revoke/", account.revoke_token, name="revoke_token"),
]
