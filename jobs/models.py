"""Jobs: a NAMD run of a template version on a cluster, its input files, its history and its progress.

Fields, constraints and values derived from a job's own fields only; every write goes through
`jobs/services.py` (states change only by conditional updates in `jobs/transitions.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from jobs.namd_log import last_figures


class JobState(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    UPLOADING = "UPLOADING", "Uploading inputs"
    READY = "READY", "Ready to submit"
    SUBMITTING = "SUBMITTING", "Submitting"
    PENDING = "PENDING", "Pending in the queue"
    RUNNING = "RUNNING", "Running"
    COMPLETING = "COMPLETING", "Completing"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    TIMEOUT = "TIMEOUT", "Timed out"
    OUT_OF_MEMORY = "OUT_OF_MEMORY", "Out of memory"
    NODE_FAIL = "NODE_FAIL", "Node failure"
    PREEMPTED = "PREEMPTED", "Preempted"
    LOST = "LOST", "Lost (SLURM has no record)"


# Not yet on the cluster: the member may still add or replace inputs.
EDITABLE_STATES = frozenset({JobState.DRAFT, JobState.UPLOADING, JobState.READY})
# In SLURM's hands: the sync asks SLURM about these.
QUEUED_STATES = frozenset({JobState.PENDING, JobState.RUNNING, JobState.COMPLETING})
TERMINAL_STATES = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.OUT_OF_MEMORY,
        JobState.NODE_FAIL,
        JobState.PREEMPTED,
        JobState.LOST,
    }
)


def settled_by_columns(state: str, *, finished_at: datetime | None, slurm_job_id: str) -> bool:
    """`Job.is_settled` from the three columns it reads (for rows read as plain values)."""
    return state in TERMINAL_STATES and (finished_at is not None or not slurm_job_id)


def awaits_cluster_by_columns(state: str, *, finished_at: datetime | None, slurm_job_id: str) -> bool:
    """`Job.awaits_cluster` from the three columns it reads (for rows read as plain values)."""
    is_settled = settled_by_columns(state, finished_at=finished_at, slurm_job_id=slurm_job_id)
    return state not in EDITABLE_STATES and not is_settled


class Job(models.Model):
    """One NAMD run: what was asked (template version, values, resources), what was sent, what happened."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    profile = models.ForeignKey("clusters.ClusterProfile", on_delete=models.PROTECT, related_name="jobs")
    template_version = models.ForeignKey("templates_app.TemplateVersion", on_delete=models.PROTECT, related_name="jobs")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    pipeline = models.ForeignKey(
        "Pipeline", null=True, blank=True, on_delete=models.CASCADE, related_name="steps", help_text="Its pipeline run."
    )
    position = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Its step in the pipeline, from 1.")
    protocol_stage = models.ForeignKey(
        "templates_app.ProtocolStage", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    stage_name = models.CharField(max_length=120, blank=True, help_text="Its pipeline stage, e.g. 'production 2/3'.")
    title = models.CharField(max_length=200)
    values = models.JSONField(default=dict, help_text="The template variable values, defaults filled in.")
    resources = models.JSONField(default=dict, help_text="Partition, nodes, tasks, CPUs, memory, GPUs, walltime.")
    recipe_name = models.CharField(max_length=100)
    continue_on_timeout = models.BooleanField(default=False, help_text="Start a continuation when SLURM times it out.")
    submit_when_ready = models.BooleanField(default=False, help_text="Submit as soon as its inputs are in place.")
    # Provenance: exactly what was (or will be) sent to the cluster.
    config_text = models.TextField(blank=True)
    config_path = models.CharField(
        max_length=200, default="job.namd", help_text="Where the config sits in the job folder (its stage's folder)."
    )
    batch_script = models.TextField(blank=True)
    script_path = models.CharField(
        max_length=200, default="job.sbatch", help_text="Where the batch script sits in the project folder."
    )
    project_dir = models.CharField(max_length=500)
    scratch_dir = models.CharField(max_length=500)

    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.DRAFT)
    slurm_job_id = models.CharField(max_length=20, blank=True)
    slurm_state = models.CharField(max_length=64, blank=True, help_text="SLURM's state, verbatim.")
    slurm_reason = models.CharField(max_length=200, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True, help_text="Why the last portal action failed.")
    error_message = models.CharField(max_length=500, blank=True)
    submit_attempts = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="Results copied back after a terminal state.")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    missing_since = models.DateTimeField(null=True, blank=True, help_text="First sync SLURM did not know the id.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="job_owner_recent", condition=Q(deleted_at=None)),
            models.Index(fields=["state", "-created_at"], name="job_state_recent", condition=Q(deleted_at=None)),
            models.Index(
                fields=["profile", "owner"],
                name="job_queued_by_group",
                condition=Q(state__in=["SUBMITTING", "PENDING", "RUNNING", "COMPLETING"]),
            ),
            models.Index(
                fields=["ended_at"], name="job_unfinished", condition=Q(finished_at=None, ended_at__isnull=False)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "slurm_job_id"], condition=~Q(slurm_job_id=""), name="job_unique_slurm_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def is_settled(self) -> bool:
        """Terminal, and nothing more comes from the cluster on its own: the results copy and the rest of the log
        are in (finished_at), or the job never reached SLURM."""
        return settled_by_columns(self.state, finished_at=self.finished_at, slurm_job_id=self.slurm_job_id)

    @property
    def awaits_cluster(self) -> bool:
        """Sent towards SLURM and not settled yet: more state, log and files will come from the cluster."""
        return awaits_cluster_by_columns(self.state, finished_at=self.finished_at, slurm_job_id=self.slurm_job_id)

    @property
    def is_active(self) -> bool:
        return self.state in QUEUED_STATES or self.state == JobState.SUBMITTING

    @property
    def dir_name(self) -> str:
        return self.project_dir.rsplit("/", 1)[-1]

    @property
    def queue_wait(self) -> timedelta | None:
        return _between(self.submitted_at, self.started_at)

    @property
    def run_time(self) -> timedelta | None:
        return _between(self.started_at, self.ended_at)

    @property
    def metadata_path(self) -> str:
        """job.json; a pipeline step's beside its script (`<step>.json`), as its steps share one folder."""
        return self.script_path.removesuffix(".sbatch") + ".json" if self.pipeline_id else "job.json"

    @property
    def slurm_log_name(self) -> str:
        """The SLURM stdout file (NAMD's log) in the scratch dir, named by the batch script's --output."""
        return f"slurm-{self.slurm_job_id}.out"

    @property
    def slurm_err_name(self) -> str:
        """The SLURM stderr file in the scratch dir, named by the batch script's --error."""
        return f"slurm-{self.slurm_job_id}.err"


def _between(start: datetime | None, end: datetime | None) -> timedelta | None:
    return end - start if start and end else None


class InputFile(models.Model):
    """One input of a job: uploaded by the member (staged on the portal, then copied) or taken from a parent job."""

    class State(models.TextChoices):
        RECEIVED = "RECEIVED", "Received by the portal"
        UPLOADING = "UPLOADING", "Copying to the cluster"
        UPLOADED = "UPLOADED", "On the cluster"
        INVALID = "INVALID", "Invalid"
        FAILED = "FAILED", "Copy failed"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="inputs")
    name = models.CharField(max_length=500, help_text="Its path in the job folder, e.g. toppar/par_all36m_prot.prm.")
    role = models.CharField(max_length=40, blank=True, help_text="The NAMD keyword that reads it, lower case.")
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    atom_count = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RECEIVED)
    problem_code = models.CharField(max_length=60, blank=True)
    problem_message = models.CharField(max_length=500, blank=True)
    bytes_uploaded = models.PositiveBigIntegerField(default=0)
    staged_path = models.CharField(max_length=500, blank=True, help_text="The portal-side copy until it is sent.")
    copied_from = models.CharField(max_length=500, blank=True, help_text="A parent job's file it was copied from.")
    is_template_asset = models.BooleanField(default=False, help_text="The template ships it; its copy is shared.")
    facts = models.JSONField(default=dict, blank=True, help_text="What the file says: its cell, a restart's step.")
    created_at = models.DateTimeField(auto_now_add=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "name"]
        constraints = [models.UniqueConstraint(fields=["job", "name"], name="input_unique_name_per_job")]

    def __str__(self) -> str:
        return f"{self.name} ({self.role or 'extra'})"


class JobEvent(models.Model):
    """Something that happened to a job: a state change (old and new state) or a note such as STALLED."""

    class Source(models.TextChoices):
        USER = "user", "User"
        SYNC = "sync", "Status sync"
        TASK = "task", "Task"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, default="TRANSITION")
    old_state = models.CharField(max_length=16, blank=True)
    new_state = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    detail = models.CharField(max_length=1000, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["job", "created_at"], name="job_event_timeline")]

    def __str__(self) -> str:
        return f"{self.kind} {self.old_state}->{self.new_state}"


class JobProgress(models.Model):
    """What the portal read of a job's logs: the incremental NAMD log state and the tails (kept off the Job row)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, primary_key=True, related_name="progress")
    log_state = models.JSONField(default=dict, help_text="jobs.namd_log.LogProgress state.")
    # Kept from log_state on every save: what a row of a table shows, without opening the whole series.
    last_step = models.BigIntegerField(null=True, blank=True, help_text="The log's latest step.")
    ns_per_day = models.FloatField(null=True, blank=True)
    final_energies = models.JSONField(default=dict, blank=True, help_text="The last ENERGY line kept, by title.")
    log_tail = models.TextField(blank=True, help_text="The end of SLURM's stdout, which is NAMD's log.")
    stderr_tail = models.TextField(blank=True)
    project_files = models.JSONField(default=list, help_text="The project dir as last listed: name, size, mtime.")
    files_listed_at = models.DateTimeField(null=True, blank=True)
    logs_fetched_at = models.DateTimeField(null=True, blank=True)
    last_timing_at = models.DateTimeField(null=True, blank=True, help_text="When a new TIMING line was last seen.")
    timing_interval_s = models.FloatField(null=True, blank=True, help_text="Observed seconds between TIMING lines.")
    stalled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"progress of job {self.job_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.keep_figures()
        if kwargs.get("update_fields") is not None and "log_state" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "last_step", "ns_per_day", "final_energies"}
        super().save(*args, **kwargs)

    def keep_figures(self) -> JobProgress:
        """The figures of the current log state (save does it; call it before a bulk_create)."""
        self.last_step, self.ns_per_day, self.final_energies = last_figures(self.log_state or {})
        return self


class JobView(models.Model):
    """The 3D view of a job (jobs/viewer/): its structure's parts and the trajectory frames kept in the file store.

    Built by a task from the files NAMD reads (fetched as the owner); frames follow the sync that reads the log
    while the job runs, and are read whole (thinned to the bounds) once its results are back.
    """

    class State(models.TextChoices):
        PREPARING = "PREPARING", "Preparing"
        READY = "READY", "Ready"
        FAILED = "FAILED", "Failed"

    job = models.OneToOneField(Job, on_delete=models.CASCADE, primary_key=True, related_name="view")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PREPARING)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    atom_count = models.PositiveIntegerField(default=0, help_text="The system's atoms.")
    parts = models.JSONField(default=dict, help_text='Shown atoms and stored bytes per part: {"solute": {...}}.')
    note = models.CharField(max_length=300, blank=True, help_text="What a thinned view leaves out.")
    cell = models.JSONField(null=True, blank=True, help_text="NAMD's periodic cell: vectors and origin (Å).")
    restrained = models.JSONField(default=dict, blank=True, help_text="Per part, the marked atoms' indices.")
    restraint_label = models.CharField(max_length=200, blank=True, help_text="What marks them, e.g. the consref file.")
    trajectory_path = models.CharField(max_length=500, blank=True, help_text="The DCD, relative to the job folder.")
    trajectory = models.JSONField(default=dict, blank=True, help_text="The DCD header as read (jobs.namd_files.dcd).")
    frames = models.JSONField(default=list, blank=True, help_text="Frames kept: [{index, step, cell}], by index.")
    frames_available = models.PositiveIntegerField(default=0, help_text="Whole frames in the DCD when last read.")
    requested_at = models.DateTimeField(auto_now_add=True)
    prepared_at = models.DateTimeField(null=True, blank=True)
    frames_read_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"view of job {self.job_id} ({self.state})"


class StagedDownload(models.Model):
    """A file of a job's project dir fetched to the portal so a request can stream it without SSH."""

    class State(models.TextChoices):
        FETCHING = "FETCHING", "Fetching"
        READY = "READY", "Ready"
        FAILED = "FAILED", "Failed"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="downloads")
    relpath = models.CharField(max_length=500, help_text="Relative to the job's project dir.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    state = models.CharField(max_length=10, choices=State.choices, default=State.FETCHING)
    size_bytes = models.PositiveBigIntegerField(default=0)
    remote_modified = models.FloatField(
        null=True, blank=True, help_text="Its mtime on the cluster when copied (the copy is shared until it changes)."
    )
    local_path = models.CharField(max_length=500, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["job", "relpath"], name="download_by_path")]

    def __str__(self) -> str:
        return f"{self.relpath} ({self.state})"


class Pipeline(models.Model):
    """A member's run of a protocol: its steps are jobs sharing one project folder and one scratch folder.

    A step's current job is the newest job at its position (a resume or a continuation adds newer ones).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pipelines")
    profile = models.ForeignKey("clusters.ClusterProfile", on_delete=models.PROTECT, related_name="pipelines")
    protocol = models.ForeignKey("templates_app.Protocol", on_delete=models.PROTECT, related_name="pipelines")
    title = models.CharField(max_length=200)
    values = models.JSONField(default=dict, help_text="The shared values as asked, before per-stage overrides.")
    stage_values = models.JSONField(default=dict, help_text="Per-stage overrides by stage position.")
    resources = models.JSONField(default=dict, help_text="The run's resources; a stage's own override them.")
    recipe_name = models.CharField(max_length=100)
    continue_on_timeout = models.BooleanField(default=True, help_text="A step SLURM times out continues itself.")
    project_dir = models.CharField(max_length=500)
    scratch_dir = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="pipeline_owner_recent", condition=Q(deleted_at=None))
        ]

    def __str__(self) -> str:
        return self.title


class Sweep(models.Model):
    """One template or protocol run at many points (a grid or list of values, or replicas with their own seeds)."""

    class Mode(models.TextChoices):
        GRID = "grid", "Every combination"
        LIST = "list", "Values side by side"
        REPLICAS = "replicas", "Replicas with different seeds"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sweeps")
    profile = models.ForeignKey("clusters.ClusterProfile", on_delete=models.PROTECT, related_name="sweeps")
    template_version = models.ForeignKey(
        "templates_app.TemplateVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="sweeps"
    )
    protocol = models.ForeignKey(
        "templates_app.Protocol", null=True, blank=True, on_delete=models.PROTECT, related_name="sweeps"
    )
    title = models.CharField(max_length=200)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.GRID)
    axes = models.JSONField(default=list, help_text='[{"name": "temperature", "values": [300, 310]}, ...]')
    max_running = models.PositiveIntegerField(null=True, blank=True, help_text="At most this many points at once.")
    created_at = models.DateTimeField(auto_now_add=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="sweep_owner_recent", condition=Q(deleted_at=None))
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(template_version__isnull=True) ^ Q(protocol__isnull=True),
                name="sweep_template_xor_protocol",
            )
        ]

    def __str__(self) -> str:
        return self.title


class SweepPoint(models.Model):
    """One point of a sweep: its values, and the job (template sweep) or pipeline (protocol sweep) that runs it."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="points")
    index = models.PositiveIntegerField()
    values = models.JSONField(default=dict, help_text="The swept variables' values at this point.")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="sweep_point")
    pipeline = models.OneToOneField(
        Pipeline, null=True, blank=True, on_delete=models.CASCADE, related_name="sweep_point"
    )

    class Meta:
        ordering = ["sweep", "index"]
        constraints = [models.UniqueConstraint(fields=["sweep", "index"], name="sweep_point_unique_index")]

    def __str__(self) -> str:
        return f"point {self.index} of {self.sweep_id}"
