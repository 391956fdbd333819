"""The 3D view's readers and writers (`jobs.namd_files.dcd`, `jobs.viewer`), on real files.

The trajectory is the stand-in engine's (the local cluster's NAMD) output for a real CHARMM-GUI step4 config
(tests/fixtures/namd_standin/charmm_gui_solution: restraints in a consref file's B column, the cell from a
truncated-octahedron .xsc, DCDfreq 5000); the structures are the test corpus's real PSF, PDB, parm7, rst7 and
.gro files (tests/fixtures/namd_inputs/SOURCES.md). Each reader is also given broken copies that must fail.
"""

from __future__ import annotations

import gzip
import itertools
import math
import shutil
import struct
import uuid
from array import array
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.namd_files.dcd import DcdHeader, Frame, read_frame, read_header, write_dcd
from jobs.namd_files.errors import InputFileInvalid
from jobs.services.viewer import _runs, xsc_cell
from jobs.viewer import atoms as atom_files
from jobs.viewer import frame_store
from jobs.viewer.frame_store import kept_frames
from jobs.viewer.scene import Atoms, build_scene, part_pdb, restrained_indices
from jobs.viewer.sources import NoStructure, view_sources
from templates_app.namd_config import check_config
from tests.localcluster.test_namd_standin import run_engine

STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "namd_standin" / "charmm_gui_solution"
INPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "namd_inputs"
OCTAHEDRON_ANGLE = 109.4712206344907


@pytest.fixture(scope="module")
def step4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CHARMM-GUI download after the engine ran its real step4 config."""
    download = tmp_path_factory.mktemp("charmm-gui") / "download"
    shutil.copytree(STANDIN, download)
    result = run_engine(download / "namd", name="step4_equilibration.inp")
    assert result.returncode == 0, result.stdout
    return download / "namd"


# ------------------------------------------------------------------------------------------------- DCD


def test_a_namd_dcd_header_says_atoms_steps_cell_and_where_each_frame_lies(step4: Path) -> None:
    data = (step4 / "step4_equilibration.dcd").read_bytes()

    header = read_header(data[:4096])

    assert header.atoms == 9
    assert header.has_cell
    assert header.step_interval == 5000
    assert header.first_step == 5000  # NAMD's first frame is written at the first multiple of DCDfreq
    assert header.timestep_fs == pytest.approx(2.0, abs=1e-4)
    assert header.frames_in(len(data)) == header.frames_written == 26  # minimize 5000 + run 125000, every 5000
    assert header.frame_offset(header.frames_written) == len(data)


def test_a_frame_has_the_coordinates_and_the_octahedron_cell_of_the_xsc(step4: Path) -> None:
    data = (step4 / "step4_equilibration.dcd").read_bytes()
    header = read_header(data)
    last = header.frames_written - 1

    frame = read_frame(header, data[header.frame_offset(last) :], header.step_of(last))

    assert frame.step == 130000
    assert frame.cell == pytest.approx((141.0, 141.0, 141.0, OCTAHEDRON_ANGLE, OCTAHEDRON_ANGLE, OCTAHEDRON_ANGLE))
    final = array("d")
    final.frombytes((step4 / "step4_equilibration.coor").read_bytes()[4:])
    assert list(frame.xyz) == pytest.approx(list(final), abs=1e-3)  # the last frame is where the run ended


def test_a_frame_still_being_written_is_not_counted(step4: Path) -> None:
    data = (step4 / "step4_equilibration.dcd").read_bytes()
    header = read_header(data)

    assert header.frames_in(len(data) - 1) == 25
    assert header.frames_in(header.header_bytes + 10) == 0
    with pytest.raises(InputFileInvalid, match="truncated"):
        read_frame(header, data[header.frame_offset(0) : header.frame_offset(1) - 4], header.step_of(0))


def test_a_written_dcd_reads_back_with_its_steps_cells_and_coordinates(step4: Path) -> None:
    data = (step4 / "step4_equilibration.dcd").read_bytes()
    header = read_header(data)
    frames = [
        read_frame(header, data[header.frame_offset(i) : header.frame_offset(i + 1)], header.step_of(i))
        for i in (0, 5, 25)
    ]

    written = write_dcd(frames, atoms=9, step_interval=25000, timestep_fs=2.0, has_cell=True)

    again = read_header(written)
    assert (again.atoms, again.frames_written, again.first_step, again.has_cell) == (9, 3, 5000, True)
    for i, frame in enumerate(frames):
        copy = read_frame(again, written[again.frame_offset(i) : again.frame_offset(i + 1)], frame.step)
        assert list(copy.xyz) == list(frame.xyz)
        assert copy.cell == pytest.approx(frame.cell)


def test_a_big_endian_dcd_reads_the_same(step4: Path) -> None:
    data = (step4 / "step4_equilibration.dcd").read_bytes()
    header = read_header(data)
    swapped = bytearray()
    offset, record = 0, 0
    while offset < len(data):  # every Fortran record, each number byte-swapped
        (size,) = struct.unpack_from("<i", data, offset)
        body = data[offset + 4 : offset + 4 + size]
        if record == 0:  # "CORD", then ints and one float
            body = body[:4] + _swapped(body[4:], 4)
        elif record == 1:  # the title count, then text
            body = _swapped(body[:4], 4) + body[4:]
        else:  # the atom count, unit cells (doubles) and coordinates (floats)
            body = _swapped(body, 8 if size == 48 else 4)
        swapped += struct.pack(">i", size) + body + struct.pack(">i", size)
        offset, record = offset + 8 + size, record + 1
    big = read_header(bytes(swapped))
    assert big.endian == ">"
    assert (big.atoms, big.frames_written) == (header.atoms, header.frames_written)
    one = read_frame(big, bytes(swapped[big.frame_offset(3) : big.frame_offset(4)]), big.step_of(3))
    two = read_frame(header, data[header.frame_offset(3) : header.frame_offset(4)], header.step_of(3))
    assert list(one.xyz) == list(two.xyz)
    assert one.cell == pytest.approx(two.cell)


def _swapped(data: bytes, width: int) -> bytes:
    return b"".join(data[i : i + width][::-1] for i in range(0, len(data), width))


def _mutated(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:60], "shorter than a DCD header"),
        (lambda d: _mutated(d, 0, struct.pack("<i", 80)), "not a DCD trajectory"),
        (lambda d: _mutated(d, 4, b"VELD"), "does not say CORD"),
        (lambda d: _mutated(d, 88, struct.pack("<i", 83)), "does not end where it says"),
        (lambda d: _mutated(d, 40, struct.pack("<i", 3)), "fixed atoms"),
        (lambda d: _mutated(d, 96, struct.pack("<i", 500)), "80-character lines"),
        (lambda d: _mutated(d, 92 + 4 + 4 + 160 + 4 + 4, struct.pack("<i", 0)), "atom-count record"),
        (lambda d: _mutated(d, 92 + 4 + 4 + 160, struct.pack("<i", 7)), "title record does not end"),
    ],
)
def test_a_damaged_dcd_header_is_refused_with_what_is_wrong(step4: Path, mutate, message: str) -> None:
    data = (step4 / "step4_equilibration.dcd").read_bytes()
    with pytest.raises(InputFileInvalid, match=message) as caught:
        read_header(mutate(data))
    assert caught.value.code == "DCD_INVALID"


def test_a_frame_whose_records_disagree_with_the_atom_count_is_refused(step4: Path) -> None:
    data = (step4 / "step4_equilibration.dcd").read_bytes()
    header = read_header(data)
    frame = data[header.frame_offset(0) : header.frame_offset(1)]
    with pytest.raises(InputFileInvalid, match="X record"):
        read_frame(header, _mutated(frame, 56, struct.pack("<i", 32)), 0)
    with pytest.raises(InputFileInvalid, match="unit-cell record"):
        read_frame(header, _mutated(frame, 0, struct.pack("<i", 40)), 0)


# -------------------------------------------------------------------------------------------- structures


def test_the_charmm_gui_config_names_structure_restraints_cell_and_trajectory(step4: Path) -> None:
    text = (step4 / "step4_equilibration.inp").read_text()
    check = check_config(text, config_path="namd/step4_equilibration.inp", config_only=True)

    sources = view_sources(check)

    assert (sources.kind, sources.structure, sources.coordinates) == (
        "psf",
        "namd/step3_input.psf",
        "namd/step3_input.pdb",
    )
    assert (sources.restraint_file, sources.restraint_column) == ("namd/restraints/prot_posres.ref", "B")
    assert sources.extended_system == "namd/step3_input.xsc"
    assert sources.trajectory == "namd/step4_equilibration.dcd"
    cell = xsc_cell((step4 / "step3_input.xsc").read_text())
    assert cell is not None
    assert [round(math.dist(v, (0, 0, 0)), 6) for v in cell.vectors] == [141.0] * 3


def test_the_view_of_the_charmm_gui_system_is_its_water_with_the_restrained_oxygen(step4: Path) -> None:
    atoms = atom_files.psf_atoms(step4 / "step3_input.psf")
    atoms.xyz = atom_files.pdb_coordinates(step4 / "step3_input.pdb", len(atoms))
    scene = build_scene(atoms)
    marks = atom_files.pdb_column(step4 / "restraints" / "prot_posres.ref", "B", len(atoms))

    assert scene.part_sizes == {"solute": 0, "ions": 0, "water": 9}
    assert restrained_indices(scene, [value != 0 for value in marks]) == {"solute": [], "ions": [], "water": [0]}
    again = Path(step4 / "water-view.pdb")
    again.write_bytes(part_pdb(atoms, scene, "water"))
    shown = atom_files.pdb_atoms(again)
    assert shown.name == atoms.name
    assert shown.resname == atoms.resname
    assert shown.segid == atoms.segid
    assert list(shown.xyz) == pytest.approx(list(atoms.xyz), abs=1e-3)


def test_ubiquitin_is_all_solute_and_its_view_pdb_keeps_every_atom_and_residue() -> None:
    atoms = atom_files.psf_atoms(INPUTS / "ubq.psf")
    atoms.xyz = atom_files.pdb_coordinates(INPUTS / "ubq.pdb", len(atoms))
    original = atom_files.pdb_atoms(INPUTS / "ubq.pdb")

    scene = build_scene(atoms)

    assert scene.part_sizes == {"solute": len(atoms), "ions": 0, "water": 0}
    assert set(atoms.element) <= {"C", "H", "N", "O", "S"}
    text = part_pdb(atoms, scene, "solute").decode()
    records = [line for line in text.splitlines() if line.startswith(("ATOM", "HETATM"))]
    assert len(records) == len(atoms)
    assert all(line.startswith("ATOM") for line in records)
    assert [line[17:21].strip() for line in records] == original.resname
    assert [float(line[30:38]) for line in records] == pytest.approx(list(original.xyz[0::3]), abs=1e-3)


def test_ions_are_lone_atoms_of_an_ion_element_and_water_is_found_by_name() -> None:
    atoms = atom_files.psf_atoms(INPUTS / "methanol_ions.psf")
    atoms.xyz = array("f", [0.0] * 3 * len(atoms))

    scene = build_scene(atoms)

    assert [atoms.resname[i] for i in scene.order[scene.part_range("ions")[0] :]] == ["SOD", "CLA"]
    assert scene.part_sizes["solute"] == len(atoms) - 2


def test_amber_and_gromacs_structures_are_read_with_their_coordinates() -> None:
    amber = atom_files.prmtop_atoms(INPUTS / "ash.parm7")
    amber.xyz = atom_files.inpcrd_coordinates(INPUTS / "ash.rst7", len(amber))
    gro = atom_files.gro_atoms(INPUTS / "rb_torsions.gro")

    assert len(amber) == 25
    assert amber.resname[0] == "ACE"
    assert amber.name[:2] == ["HH31", "CH3"]
    assert list(amber.xyz[:3]) == pytest.approx([2.000001, 1.0, -0.0000013], abs=1e-5)
    assert len(gro) == 9
    assert gro.name[0] == "CB"
    assert list(gro.xyz[:3]) == pytest.approx([27.11, 29.46, 28.03])


def test_coordinates_of_another_system_are_refused(tmp_path: Path) -> None:
    atoms = atom_files.psf_atoms(INPUTS / "ubq.psf")
    short = tmp_path / "short.pdb"
    short.write_text("".join((INPUTS / "ubq.pdb").read_text().splitlines(keepends=True)[:-40]))
    with pytest.raises(InputFileInvalid) as caught:
        atom_files.pdb_coordinates(short, len(atoms))
    assert caught.value.code in ("VIEW_ATOM_COUNT_MISMATCH", "PDB_INVALID")
    with pytest.raises(InputFileInvalid):
        atom_files.psf_atoms(short)  # a PDB is no PSF


def test_a_config_without_structure_and_coordinates_has_no_view() -> None:
    check = check_config("parameters par.prm\nrun 10\n", config_path="job.namd", config_only=True)
    with pytest.raises(NoStructure):
        view_sources(check)


# --------------------------------------------------------------------------------------------- thinning


def _waters_and_protein(protein: int, waters: int) -> Atoms:
    atoms = Atoms()
    for i in range(protein):
        atoms.append("PROA", str(i // 10 + 1), "ALA", f"C{i % 10}", "C")
    for i in range(waters):
        for name in ("OH2", "H1", "H2"):
            atoms.append("SOLV", str(i + 1), "TIP3", name, name[0])
    atoms.append("IONS", "1", "SOD", "SOD", "Na")
    atoms.xyz = array("f", [0.0] * 3 * len(atoms))
    return atoms


def test_a_system_over_the_bound_keeps_its_solute_and_every_kth_water_and_says_so() -> None:
    atoms = _waters_and_protein(100, 1000)

    scene = build_scene(atoms, max_atoms=700)

    assert scene.part_sizes["solute"] == 100
    assert scene.part_sizes["ions"] == 1
    assert scene.part_sizes["water"] % 3 == 0
    assert len(scene.order) <= 700
    assert "every 6th water molecule" in scene.note
    assert "3,101 atoms" in scene.note
    assert all(atoms.resname[i] == "TIP3" for i in scene.order[101:])


def test_a_solute_over_the_bound_shows_its_first_atoms_without_water() -> None:
    scene = build_scene(_waters_and_protein(1000, 10), max_atoms=500)

    assert scene.part_sizes == {"solute": 500, "ions": 0, "water": 0}
    assert "first 500 atoms of its solute" in scene.note


@given(available=st.integers(min_value=0, max_value=100_000), max_frames=st.integers(min_value=1, max_value=300))
def test_kept_frames_are_even_bounded_and_end_with_the_newest(available: int, max_frames: int) -> None:
    kept = kept_frames(available, max_frames=max_frames)

    assert len(kept) <= max_frames
    if available == 0:
        assert kept == []
        return
    assert kept[-1] == available - 1
    assert kept == sorted(set(kept))
    steps = {b - a for a, b in itertools.pairwise(kept[:-1])}
    assert len(steps) <= 1  # one stride, but for the newest
    if available <= max_frames:
        assert kept == list(range(available))


def test_a_stored_part_is_gzip_of_its_pdb(tmp_path: Path, settings) -> None:
    settings.FILE_STORE = str(tmp_path)
    job = uuid.uuid4()
    size = frame_store.write_part(job, "solute", b"ATOM\n" * 1000)
    data = frame_store.part_path(job, "solute").read_bytes()
    assert len(data) == size < 1000
    assert gzip.decompress(data) == b"ATOM\n" * 1000
    frame = Frame(step=10, cell=(10.0, 11.0, 12.0, 90.0, 90.0, 90.0), xyz=array("f", [1.001, 2.0, 3.0, 4.0, 5.0, 6.0]))
    frame_store.store_frame(job, 3, frame.cell, frame_store.view_coordinates(frame, array("i", [1, 0])))
    stored = array("f")
    stored.frombytes(frame_store.frame_slice(job, 3, 0, 2))
    assert list(stored) == [4.0, 5.0, 6.0, 1.0, 2.0, 3.0]  # in the view's order, to 1/64 Å
    assert frame_store.frame_cell(job, 3) == [10.0, 11.0, 12.0, 90.0, 90.0, 90.0]
    assert frame_store.stored_frames(job) == {3}
    header = DcdHeader(
        atoms=2,
        first_step=10,
        step_interval=10,
        timestep_fs=2.0,
        has_cell=True,
        header_bytes=0,
        endian="<",
        frames_written=1,
    )
    assert header.frame_bytes == 56 + 3 * (8 + 8)


def test_consecutive_frames_are_read_in_runs_of_bounded_length() -> None:
    assert _runs([0, 1, 2, 5, 6, 9], max_frames=2) == [[0, 1], [2], [5, 6], [9]]
    assert _runs([3, 4, 5, 6], max_frames=10) == [[3, 4, 5, 6]]
    assert _runs([], max_frames=4) == []
