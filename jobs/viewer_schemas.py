"""Response bodies of the 3D view API (`jobs/viewer_api.py`)."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema


class ViewPartOut(Schema):
    atoms: int = Field(description="Atoms of the system shown in this part.")
    bytes: int = Field(description="The part's PDB as stored, gzip-compressed.")
    ready: bool = Field(default=True, description="Written: the part the view opens with comes first, the rest after.")
    url: str = Field(description="GET: the part's PDB (sent gzip-encoded to clients that accept it).")


class ViewFrameOut(Schema):
    index: int = Field(description="The frame's index in the job's DCD, from 0.")
    step: int
    cell: list[float] | None = Field(default=None, description="a, b, c (Å), alpha, beta, gamma (degrees).")


class ViewCellOut(Schema):
    vectors: list[list[float]] = Field(description="NAMD's cellBasisVector1-3 (Å).")
    origin: list[float] = Field(description="NAMD's cellOrigin: the centre of the box.")


class ViewOut(Schema):
    job_id: int
    state: str = Field(description="NONE (never opened), PREPARING, READY or FAILED.")
    error_code: str = ""
    error_message: str = ""
    atom_count: int = 0
    note: str = Field(default="", description="What a thinned view of a very large system leaves out.")
    parts: dict[str, ViewPartOut] = Field(
        default={}, description="solute, ions, water: their atoms follow each other in this order in the frames."
    )
    cell: ViewCellOut | None = None
    restrained: dict[str, list[int]] = Field(default={}, description="Per part, indices of the marked atoms.")
    restraint_label: str = ""
    trajectory_path: str = Field(default="", description="The DCD the config writes, in the job folder.")
    frames_available: int = Field(default=0, description="Whole frames in the DCD when last read.")
    timestep_fs: float | None = None
    frames: list[ViewFrameOut] = Field(default=[], description="The frames the portal keeps (thinned evenly).")
    frame_url: str = ""
    dcd_url: str = ""
    prepared_at: datetime | None = None
    frames_read_at: datetime | None = None
    is_settled: bool = False


class ViewAcceptedOut(Schema):
    view: ViewOut
    task_id: str = Field(description="The task preparing the view; empty when it was ready already.")
