"""Writes on jobs, one module per concept; the names callers use are re-exported here.

Requests call the `request_*`/`create_*`/`receive_*` services, which check access, change the
database and enqueue a task (`portal.enqueue.enqueue_on_commit`); they never touch a cluster.
Tasks call the others, which run as the job's owner through `jobs.remote.member_session`.

- `creation`: new jobs (template, clone), their folders and rendering; `inputs`: receiving files;
  `readiness`: what blocks submission; `input_copy`: inputs to the cluster; `input_archives`:
  an archive as an input tree; `submission`; `cancellation` (and deletion, bulk);
  `restart` (continue, after TIMEOUT); `pipelines` (protocol runs as SLURM dependency chains);
  `pipeline_preview` (a run's steps previewed before it is created); `sweep_preview` (a sweep's points
  counted and its first point previewed before it is created); `stages` (the next stage of a
  protocol); `sweeps` (a template or protocol at many points, a gate on how many run at once);
  `status_sync` (SLURM states); `progress` (the NAMD log); `finishing` (results back); `files`
  (listing, downloads); `storage` (a member's quota on the portal's file store, expiry); `discovery`
  (jobs found again from job.json).
"""

from jobs.services.cancellation import (
    BulkResult,
    bulk_action,
    cancel_in_slurm,
    delete_job_files,
    request_cancel,
    request_delete,
)
from jobs.services.creation import JobRequest, clone_job, create_job, suggested_values, update_job_values
from jobs.services.discovery import discover_jobs, request_discovery
from jobs.services.failures import download_gave_up, input_copy_gave_up, internal_error, job_task_gave_up
from jobs.services.files import (
    fetch_download,
    list_job_files,
    request_download,
    request_file_listing,
    request_log_fetch,
)
from jobs.services.finishing import fetch_logs, finish_job
from jobs.services.input_archives import receive_input_archive, unpack_input_archive
from jobs.services.input_copy import copy_input_batch, copy_input_file
from jobs.services.inputs import (
    StagedInput,
    input_reads,
    input_roles,
    job_reads,
    job_roles,
    receive_input_file,
    register_staged_input,
    register_staged_inputs,
)
from jobs.services.pipeline_preview import PipelinePreview, StepPreview, preview_pipeline
from jobs.services.pipelines import (
    PipelineRequest,
    access_runnable_protocol,
    cancel_pipeline_steps,
    clone_pipeline,
    create_pipeline,
    pipeline_submission_gave_up,
    pipeline_submission_waits,
    request_cancel_pipeline,
    request_submit_pipeline,
    resume_pipeline,
    submit_pipeline,
)
from jobs.services.readiness import input_problems, input_warnings, refresh_readiness
from jobs.services.restart import prepare_restart, request_restart
from jobs.services.stages import copy_previous_stage, next_stage_template, request_next_stage
from jobs.services.status_sync import request_due_syncs, request_member_refresh, sync_member_jobs
from jobs.services.storage import StorageQuotaExceeded, expire_staged_files
from jobs.services.submission import (
    request_submit,
    set_submit_when_ready,
    submission_gave_up,
    submission_waits,
    submit_job,
)
from jobs.services.sweep_preview import SweepPreview, preview_sweep
from jobs.services.sweeps import (
    SweepRequest,
    advance_sweep,
    create_sweep,
    plan_points,
    request_cancel_sweep,
    request_submit_sweep,
    retry_failed_points,
    sweep_turn_gave_up,
)
from jobs.services.viewer import prepare_view, read_view_frames, request_view, view_gave_up

__all__ = [
    "BulkResult",
    "JobRequest",
    "PipelinePreview",
    "PipelineRequest",
    "StagedInput",
    "StepPreview",
    "StorageQuotaExceeded",
    "SweepPreview",
    "SweepRequest",
    "access_runnable_protocol",
    "advance_sweep",
    "bulk_action",
    "cancel_in_slurm",
    "cancel_pipeline_steps",
    "clone_job",
    "clone_pipeline",
    "copy_input_batch",
    "copy_input_file",
    "copy_previous_stage",
    "create_job",
    "create_pipeline",
    "create_sweep",
    "delete_job_files",
    "discover_jobs",
    "download_gave_up",
    "expire_staged_files",
    "fetch_download",
    "fetch_logs",
    "finish_job",
    "input_copy_gave_up",
    "input_problems",
    "input_reads",
    "input_roles",
    "input_warnings",
    "internal_error",
    "job_reads",
    "job_roles",
    "job_task_gave_up",
    "list_job_files",
    "next_stage_template",
    "pipeline_submission_gave_up",
    "pipeline_submission_waits",
    "plan_points",
    "prepare_restart",
    "prepare_view",
    "preview_pipeline",
    "preview_sweep",
    "read_view_frames",
    "receive_input_archive",
    "receive_input_file",
    "refresh_readiness",
    "register_staged_input",
    "register_staged_inputs",
    "request_cancel",
    "request_cancel_pipeline",
    "request_cancel_sweep",
    "request_delete",
    "request_discovery",
    "request_download",
    "request_due_syncs",
    "request_file_listing",
    "request_log_fetch",
    "request_member_refresh",
    "request_next_stage",
    "request_restart",
    "request_submit",
    "request_submit_pipeline",
    "request_submit_sweep",
    "request_view",
    "resume_pipeline",
    "retry_failed_points",
    "set_submit_when_ready",
    "submission_gave_up",
    "submission_waits",
    "submit_job",
    "submit_pipeline",
    "suggested_values",
    "sweep_turn_gave_up",
    "sync_member_jobs",
    "unpack_input_archive",
    "update_job_values",
    "view_gave_up",
]
