"""The SLURM adapter (22.05): argv builders, output parsers, the one state table, and a thin client.

One module per concept: `states` (the state table, `JobStatus`), `errors`, `identifiers` (job id and
name allow-lists, chunking), `fields` (SLURM's field forms, internal), `sbatch`, `status` (squeue + sacct),
`scancel`, `lookup` (by job name), `partitions` (sinfo), `client` (`SlurmClient`). This file re-exports
their public names, so callers import from `clusters.slurm`.

It speaks only frozen dataclasses, enums and plain exceptions. Must never know Django, models, the
portal's users, SSH or how an argv reaches the cluster. Every value it puts in an argv is validated
first, and it never writes shell text. Times SLURM prints carry no zone: `started_at`/`ended_at` are
naive datetimes in the cluster's local time, as `squeue`/`sacct` print them.
"""

from clusters.slurm.chain import ChainStep, PreludeCommand, build_chain_script, build_relink_argv, parse_chain_output
from clusters.slurm.client import (
    ChainResult,
    RunCommand,
    RunSequence,
    SlurmClient,
)
from clusters.slurm.errors import (
    STDERR_EXCERPT_MAX_CHARS,
    ChainStagingFailed,
    RelinkFailed,
    ScancelFailed,
    SlurmCommandFailed,
    SlurmError,
    StatusQueryFailed,
    UnexpectedSlurmOutput,
    stderr_excerpt,
)
from clusters.slurm.identifiers import (
    DERIVED_JOB_ID_PATTERN,
    JOB_ID_PATTERN,
    JOB_NAME_PATTERN,
    MAX_JOB_IDS_PER_COMMAND,
    chunk_job_ids,
    validate_job_id,
    validate_job_ids,
    validate_job_name,
)
from clusters.slurm.lookup import (
    FIND_BY_NAME_LOOKBACK,
    build_find_by_name_argvs,
    job_ids_named,
    parse_find_by_name_output,
)
from clusters.slurm.partitions import (
    GPU_GRES_PATTERN,
    PARTITION_INFO_FORMAT,
    PartitionInfo,
    build_partition_info_argv,
    parse_partition_info,
)
from clusters.slurm.sbatch import (
    SBATCH_ERROR_RULES,
    SBATCH_GENERIC_MESSAGE,
    SBATCH_OPTION_NAMES,
    SBATCH_OPTION_PATTERN,
    SBATCH_PARSABLE_PATTERN,
    SbatchError,
    SbatchErrorCode,
    SbatchRejected,
    build_sbatch_argv,
    classify_sbatch_error,
    parse_sbatch_output,
)
from clusters.slurm.scancel import (
    build_scancel_argv,
)
from clusters.slurm.states import (
    SLURM_TO_PORTAL_STATE,
    TERMINAL_PORTAL_STATES,
    UNSATISFIABLE_PENDING_REASONS,
    JobStatus,
    ParsedState,
    PortalState,
    SlurmState,
    StatusSource,
    is_terminal,
    parse_state,
)
from clusters.slurm.status import (
    SACCT_EXIT_CODE_PATTERN,
    SACCT_STATUS_FIELD_COUNT,
    SACCT_STATUS_FORMAT,
    SQUEUE_PURGED_ID_STDERR,
    SQUEUE_STATUS_FIELD_COUNT,
    SQUEUE_STATUS_FORMAT,
    build_status_argvs,
    check_sacct_result,
    check_squeue_result,
    parse_sacct_status_line,
    parse_squeue_status_line,
    parse_status_output,
)

__all__ = [
    "DERIVED_JOB_ID_PATTERN",
    "FIND_BY_NAME_LOOKBACK",
    "GPU_GRES_PATTERN",
    "JOB_ID_PATTERN",
    "JOB_NAME_PATTERN",
    "MAX_JOB_IDS_PER_COMMAND",
    "PARTITION_INFO_FORMAT",
    "SACCT_EXIT_CODE_PATTERN",
    "SACCT_STATUS_FIELD_COUNT",
    "SACCT_STATUS_FORMAT",
    "SBATCH_ERROR_RULES",
    "SBATCH_GENERIC_MESSAGE",
    "SBATCH_OPTION_NAMES",
    "SBATCH_OPTION_PATTERN",
    "SBATCH_PARSABLE_PATTERN",
    "SLURM_TO_PORTAL_STATE",
    "SQUEUE_PURGED_ID_STDERR",
    "SQUEUE_STATUS_FIELD_COUNT",
    "SQUEUE_STATUS_FORMAT",
    "STDERR_EXCERPT_MAX_CHARS",
    "TERMINAL_PORTAL_STATES",
    "UNSATISFIABLE_PENDING_REASONS",
    "ChainResult",
    "ChainStagingFailed",
    "ChainStep",
    "JobStatus",
    "ParsedState",
    "PartitionInfo",
    "PortalState",
    "PreludeCommand",
    "RelinkFailed",
    "RunCommand",
    "RunSequence",
    "SbatchError",
    "SbatchErrorCode",
    "SbatchRejected",
    "ScancelFailed",
    "SlurmClient",
    "SlurmCommandFailed",
    "SlurmError",
    "SlurmState",
    "StatusQueryFailed",
    "StatusSource",
    "UnexpectedSlurmOutput",
    "build_chain_script",
    "build_find_by_name_argvs",
    "build_partition_info_argv",
    "build_relink_argv",
    "build_sbatch_argv",
    "build_scancel_argv",
    "build_status_argvs",
    "check_sacct_result",
    "check_squeue_result",
    "chunk_job_ids",
    "classify_sbatch_error",
    "is_terminal",
    "job_ids_named",
    "parse_chain_output",
    "parse_find_by_name_output",
    "parse_partition_info",
    "parse_sacct_status_line",
    "parse_sbatch_output",
    "parse_squeue_status_line",
    "parse_state",
    "parse_status_output",
    "stderr_excerpt",
    "validate_job_id",
    "validate_job_ids",
    "validate_job_name",
]
