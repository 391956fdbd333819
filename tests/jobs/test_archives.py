"""Unpacking input archives: real CHARMM-GUI-shaped .tgz/.tar/.zip files built here, and hostile ones crafted to
escape, link, bomb, lie about sizes or break off. After every refusal the destination holds nothing new."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import stat
import struct
import tarfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.archives import ArchiveLimits, ArchiveRefused, UnpackedFile, archive_kind, unpack_archive

ROOT = "charmm-gui-1234567890"
CHARMM_GUI_FILES = {
    "step3_input.psf": b"PSF EXT CMAP XPLOR\n\n         1 !NTITLE\n REMARKS CHARMM-GUI\n\n         3 !NATOM\n",
    "step3_input.pdb": b"REMARK CHARMM-GUI\nATOM      1  OH2 TIP3W   1       0.000   0.000   0.000  1.00  0.00\nEND\n",
    "toppar/par_all36m_prot.prm": b"* CHARMM36m protein parameters\n*\nBONDS\nCT1  C     250.0     1.490\nEND\n",
    "toppar/toppar_water_ions.str": b"* water and ions\nread rtf card append\nEND\n",
    "namd/step4_equilibration.inp": b"structure ../step3_input.psf\ncoordinates ../step3_input.pdb\nrun 125000\n",
    "namd/step5_production.inp": b"structure ../step3_input.psf\nrun 500000\n",
    "namd/empty_restraints.txt": b"",
}
MiB = 1024 * 1024

TarMember = tuple[tarfile.TarInfo, bytes | None]


# ------------------------------------------------------------------ building archives


def tar_file(name: str, data: bytes = b"x", **fields: object) -> TarMember:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for field, value in fields.items():
        setattr(info, field, value)
    return info, data


def tar_entry(name: str, entry_type: bytes, **fields: object) -> TarMember:
    info = tarfile.TarInfo(name)
    info.type = entry_type
    for field, value in fields.items():
        setattr(info, field, value)
    return info, None


def write_tar(path: Path, members: list[TarMember], *, mode: str = "w:gz", **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode, **options) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def zip_info(name: str, unix_mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode bits in external_attr count
    info.external_attr = unix_mode << 16
    return info


# Offsets in a local file header and in a central directory record (PKWARE APPNOTE 4.3.7 and 4.3.12).
ZIP_FIELDS = {"flags": (6, 8, "<H"), "method": (8, 10, "<H"), "size": (22, 24, "<L")}


def patch_zip(path: Path, field: str, value: int) -> Path:
    """Rewrite a header field of a one-member zip, in its local header and its central directory record."""
    local_at, central_at, layout = ZIP_FIELDS[field]
    data = bytearray(path.read_bytes())
    struct.pack_into(layout, data, local_at, value)
    struct.pack_into(layout, data, data.rfind(b"PK\x01\x02") + central_at, value)
    path.write_bytes(bytes(data))
    return path


def charmm_gui_tar_members() -> list[TarMember]:
    folders = [ROOT, f"{ROOT}/toppar", f"{ROOT}/namd", f"{ROOT}/gromacs"]  # gromacs/ is empty
    members = [tar_entry(folder, tarfile.DIRTYPE, mode=0o700) for folder in folders]
    # setuid and world-writable in the archive: the portal writes 0o644 all the same
    members += [tar_file(f"{ROOT}/{relpath}", data, mode=0o4777) for relpath, data in CHARMM_GUI_FILES.items()]
    return members


def charmm_gui_zip(path: Path) -> Path:
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [(f"{ROOT}/", b""), (f"{ROOT}/gromacs/", b"")]
    members += [(zip_info(f"{ROOT}/{relpath}", 0o104777), data) for relpath, data in CHARMM_GUI_FILES.items()]
    members += [  # what macOS's Finder adds
        ("__MACOSX/", b""),
        (f"__MACOSX/{ROOT}/._step3_input.psf", b"\x00\x05\x16\x07"),
        (f"{ROOT}/.DS_Store", b"Bud1"),
        (f"{ROOT}/toppar/._par_all36m_prot.prm", b"\x00\x05\x16\x07"),
    ]
    return write_zip(path, members)


def build_charmm_gui(kind: str, folder: Path) -> Path:
    if kind == "zip":
        return charmm_gui_zip(folder / "charmm-gui.zip")
    if kind == "tar":
        return write_tar(folder / "charmm-gui.tar", charmm_gui_tar_members(), mode="w")
    return write_tar(folder / "charmm-gui.tgz", charmm_gui_tar_members())


def snapshot(folder: Path) -> dict[str, bytes | str | None] | None:
    """Every path under `folder` with its content (files), link target (links) or None (folders)."""
    if not folder.exists():
        return None
    found: dict[str, bytes | str | None] = {}
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(parent) / name
            relpath = str(path.relative_to(folder))
            found[relpath] = os.readlink(path) if path.is_symlink() else (None if path.is_dir() else path.read_bytes())
    return found


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    folder = tmp_path / "unpacked"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"the caller's own file\n")
    return folder


@pytest.fixture
def archives(tmp_path: Path) -> Path:
    return tmp_path / "archives"


def refusal(archive: Path, destination: Path, kind: str, limits: ArchiveLimits | None = None) -> ArchiveRefused:
    before = snapshot(destination)
    with pytest.raises(ArchiveRefused) as caught:
        unpack_archive(archive, destination, kind=kind, limits=limits or ArchiveLimits())
    assert snapshot(destination) == before
    return caught.value


# ------------------------------------------------------------------ archives that unpack


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "zip"])
def test_a_charmm_gui_archive_unpacks_without_its_root_folder(kind: str, archives: Path, destination: Path) -> None:
    archive = build_charmm_gui(kind, archives)

    files = unpack_archive(archive, destination, kind=kind)

    assert files == [
        UnpackedFile(relpath, destination / relpath, len(data), hashlib.sha256(data).hexdigest())
        for relpath, data in sorted(CHARMM_GUI_FILES.items())
    ]
    for file in files:
        assert file.path.read_bytes() == CHARMM_GUI_FILES[file.relpath]
        assert stat.S_IMODE(file.path.stat().st_mode) == 0o644
    # no root folder, no empty gromacs/, no macOS junk, no staging folder; the caller's file untouched
    assert sorted(os.listdir(destination)) == ["namd", "notes.txt", "step3_input.pdb", "step3_input.psf", "toppar"]
    assert (destination / "notes.txt").read_bytes() == b"the caller's own file\n"


def test_the_root_folder_is_kept_when_asked(archives: Path, destination: Path) -> None:
    files = unpack_archive(build_charmm_gui("tar.gz", archives), destination, kind="tar.gz", strip_common_root=False)

    assert [file.relpath for file in files] == [f"{ROOT}/{relpath}" for relpath in sorted(CHARMM_GUI_FILES)]
    assert (destination / ROOT / "toppar" / "par_all36m_prot.prm").is_file() is True


@pytest.mark.parametrize(
    ("names", "relpaths"),
    [
        (["inputs/a.psf", "other/b.prm"], ["inputs/a.psf", "other/b.prm"]),  # two top folders: nothing to strip
        (["a.psf", "inputs/b.prm"], ["a.psf", "inputs/b.prm"]),
        (["./inputs/a.psf", "inputs//b.prm"], ["a.psf", "b.prm"]),  # "." and empty parts normalized away
        (["a.psf"], ["a.psf"]),  # a lone file is not under a folder
    ],
)
def test_only_a_single_top_folder_is_stripped(
    names: list[str], relpaths: list[str], archives: Path, destination: Path
) -> None:
    archive = write_tar(archives / "inputs.tgz", [tar_file(name) for name in names])

    assert [file.relpath for file in unpack_archive(archive, destination, kind="tar.gz")] == relpaths


def test_a_small_very_repetitive_file_is_no_bomb(archives: Path, destination: Path) -> None:
    restraints = b"    1    0.0\n" * 40_000  # 520 KB, compresses far beyond 200:1
    archive = write_zip(archives / "restraints.zip", [("restraints.txt", restraints)])
    assert len(restraints) / archive.stat().st_size > 200

    (file,) = unpack_archive(archive, destination, kind="zip")

    assert (file.relpath, file.size_bytes) == ("restraints.txt", len(restraints))


def test_a_tgz_member_just_under_the_ratio_is_not_refused_for_what_gzip_read_ahead(
    archives: Path, destination: Path
) -> None:
    # 3 MiB of zeros with a random byte every 800 compress about 170:1, under 200. gzip has read the first
    # kilobytes of the member before it starts, which must not make its measured ratio look higher.
    noise = random.Random(7)
    data = bytearray(3 * MiB)
    for at in range(0, len(data), 800):
        data[at] = noise.randrange(256)
    archive = write_tar(archives / "sparse-noise.tgz", [tar_file(f"{ROOT}/step4.coor", bytes(data))], compresslevel=6)
    assert 150 < len(data) / archive.stat().st_size < 200

    (file,) = unpack_archive(archive, destination, kind="tar.gz")

    assert (file.relpath, file.size_bytes) == ("step4.coor", len(data))


def test_a_missing_destination_is_created_and_removed_again_on_refusal(archives: Path, tmp_path: Path) -> None:
    good = build_charmm_gui("tar.gz", archives)
    evil = write_tar(archives / "evil.tgz", [tar_file("inputs/a.psf"), tar_file("../evil")])

    with pytest.raises(ArchiveRefused):
        unpack_archive(evil, tmp_path / "new" / "folder", kind="tar.gz")
    assert (tmp_path / "new" / "folder").exists() is False

    files = unpack_archive(good, tmp_path / "new" / "folder", kind="tar.gz")
    assert len(files) == len(CHARMM_GUI_FILES)


def test_an_unknown_kind_is_a_callers_bug(archives: Path, destination: Path) -> None:
    before = snapshot(destination)
    with pytest.raises(ValueError, match="unknown archive kind") as caught:
        unpack_archive(build_charmm_gui("tar.gz", archives), destination, kind="rar")
    assert type(caught.value) is ValueError
    assert snapshot(destination) == before


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("charmm-gui.tgz", "tar.gz"),
        ("charmm-gui-1234567890.tar.gz", "tar.gz"),
        ("INPUTS.TGZ", "tar.gz"),
        ("inputs.tar", "tar"),
        ("inputs.zip", "zip"),
        ("Inputs.ZIP", "zip"),
        ("inputs.tar.bz2", None),
        ("inputs.tar.xz", None),
        ("inputs.gz", None),
        ("inputs.rar", None),
        ("step3_input.psf", None),
        ("inputs.zip.exe", None),
        ("zip", None),
        ("", None),
    ],
)
def test_archive_kind_follows_the_file_name(filename: str, kind: str | None) -> None:
    assert archive_kind(filename) == kind


# ------------------------------------------------------------------ archives refused

Builder = Callable[[Path], Path]


def tgz(*members: TarMember, **options: object) -> Builder:
    return lambda folder: write_tar(folder / "inputs.tgz", list(members), **options)


def zip_of(*members: tuple[str | zipfile.ZipInfo, bytes]) -> Builder:
    return lambda folder: write_zip(folder / "inputs.zip", list(members))


def zip_named(name: str, raw_name: bytes) -> Builder:
    """A zip whose member name holds bytes zipfile won't write (it cuts names at a NUL)."""

    def build(folder: Path) -> Path:
        path = write_zip(folder / "inputs.zip", [(name, b"x")])
        path.write_bytes(path.read_bytes().replace(name.encode(), raw_name))
        return path

    return build


def one_member_zip(data: bytes) -> Builder:
    return lambda folder: write_zip(folder / "inputs.zip", [(f"{ROOT}/step3_input.psf", data)])


def zip_patched(field: str, value: int, data: bytes = b"PSF \n" * 1000) -> Builder:
    return lambda folder: patch_zip(one_member_zip(data)(folder), field, value)


def tar_with_a_size_header(declared: int, data: bytes, *, compressed: bool) -> Builder:
    """A tar whose member's header says `declared` bytes whatever data follows it, then tar's end marker."""

    def build(folder: Path) -> Path:
        info = tarfile.TarInfo(f"{ROOT}/step3_input.psf")
        info.size = declared
        padding = b"\0" * (-len(data) % tarfile.BLOCKSIZE)
        body = info.tobuf(tarfile.PAX_FORMAT) + data + padding + b"\0" * (2 * tarfile.BLOCKSIZE)
        path = folder / ("inputs.tgz" if compressed else "inputs.tar")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(body) if compressed else body)
        return path

    return build


def cut(builder: Builder, keep: Callable[[int], int]) -> Builder:
    """The archive `builder` makes, truncated to keep(size) bytes, as an interrupted upload leaves it."""

    def build(folder: Path) -> Path:
        path = builder(folder)
        data = path.read_bytes()
        path.write_bytes(data[: keep(len(data))])
        return path

    return build


def flip(builder: Builder, at: Callable[[int], int]) -> Builder:
    """The archive `builder` makes with one byte inverted at at(size)."""

    def build(folder: Path) -> Path:
        path = builder(folder)
        data = bytearray(path.read_bytes())
        data[at(len(data))] ^= 0xFF
        path.write_bytes(bytes(data))
        return path

    return build


def charmm_gui(kind: str) -> Builder:
    return lambda folder: build_charmm_gui(kind, folder)


def a_tar_ending_after_its_first_member(folder: Path) -> Path:
    """Two members, cut right after the first one's data: a plain tar has no checksum to notice."""
    path = write_tar(folder / "inputs.tar", [tar_file("inputs/a.psf", b"a" * 600), tar_file("inputs/b.prm")], mode="w")
    path.write_bytes(path.read_bytes()[: 3 * tarfile.BLOCKSIZE])  # header, two blocks of data
    return path


def gzip_of_text(folder: Path) -> Path:
    path = folder / "inputs.tgz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(CHARMM_GUI_FILES["step3_input.psf"] * 20))
    return path


def bare_file(folder: Path) -> Path:
    path = folder / "inputs.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CHARMM_GUI_FILES["step3_input.psf"] * 20)
    return path


def a_tgz_of_zeros(folder: Path) -> Path:
    """64 MiB of zeros, about 64 KB compressed."""
    return write_tar(folder / "zeros.tgz", [tar_file(f"{ROOT}/zeros.coor", bytes(64 * MiB))])


def eleven_files(kind: str) -> Builder:
    names = [f"{ROOT}/toppar/par_{number}.prm" for number in range(11)]
    if kind == "zip":
        return zip_of(*((name, b"x") for name in names))
    return tgz(*(tar_file(name) for name in names))


FEW_FILES = ArchiveLimits(max_files=10)
SMALL = ArchiveLimits(max_total_bytes=1000)
SHORT_NAMES = ArchiveLimits(max_path_length=40)
SHALLOW = ArchiveLimits(max_depth=3)
SYMLINK = stat.S_IFLNK | 0o777
FIFO = stat.S_IFIFO | 0o644


@pytest.mark.parametrize(
    ("build", "kind", "limits", "code", "member"),
    [
        pytest.param(tgz(tar_file("../evil")), "tar.gz", None, "ARCHIVE_PATH_ESCAPE", "../evil", id="dotdot"),
        pytest.param(
            tgz(tar_file(f"{ROOT}/a.psf"), tar_file(f"{ROOT}/../../evil")),
            "tar.gz",
            None,
            "ARCHIVE_PATH_ESCAPE",
            f"{ROOT}/../../evil",
            id="dotdot-after-a-written-file",
        ),
        pytest.param(zip_of(("../evil", b"x")), "zip", None, "ARCHIVE_PATH_ESCAPE", "../evil", id="zip-dotdot"),
        pytest.param(tgz(tar_file("/etc/passwd")), "tar.gz", None, "ARCHIVE_ABSOLUTE_PATH", "/etc/passwd", id="abs"),
        pytest.param(zip_of(("/etc/passwd", b"x")), "zip", None, "ARCHIVE_ABSOLUTE_PATH", "/etc/passwd", id="zip-abs"),
        pytest.param(
            zip_of(("C:/Windows/evil.dll", b"x")),
            "zip",
            None,
            "ARCHIVE_ABSOLUTE_PATH",
            "C:/Windows/evil.dll",
            id="zip-drive",
        ),
        pytest.param(
            tgz(tar_entry(f"{ROOT}/toppar", tarfile.SYMTYPE, linkname="/etc")),
            "tar.gz",
            None,
            "ARCHIVE_LINK",
            f"{ROOT}/toppar",
            id="symlink",
        ),
        pytest.param(
            tgz(tar_file(f"{ROOT}/a.psf"), tar_entry(f"{ROOT}/b.psf", tarfile.LNKTYPE, linkname=f"{ROOT}/a.psf")),
            "tar.gz",
            None,
            "ARCHIVE_LINK",
            f"{ROOT}/b.psf",
            id="hardlink",
        ),
        pytest.param(
            zip_of((zip_info(f"{ROOT}/toppar", SYMLINK), b"/etc")),
            "zip",
            None,
            "ARCHIVE_LINK",
            f"{ROOT}/toppar",
            id="zip-symlink",
        ),
        pytest.param(
            tgz(tar_entry("fifo", tarfile.FIFOTYPE)), "tar.gz", None, "ARCHIVE_SPECIAL_FILE", "fifo", id="fifo"
        ),
        pytest.param(
            tgz(tar_entry("tty", tarfile.CHRTYPE, devmajor=5, devminor=0)),
            "tar.gz",
            None,
            "ARCHIVE_SPECIAL_FILE",
            "tty",
            id="char-device",
        ),
        pytest.param(
            tgz(tar_entry("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)),
            "tar.gz",
            None,
            "ARCHIVE_SPECIAL_FILE",
            "sda",
            id="block-device",
        ),
        pytest.param(
            tgz(tar_entry("volume", b"V"), format=tarfile.GNU_FORMAT),  # a GNU volume label
            "tar.gz",
            None,
            "ARCHIVE_SPECIAL_FILE",
            "volume",
            id="unknown-tar-type",
        ),
        pytest.param(zip_of((zip_info("fifo", FIFO), b"")), "zip", None, "ARCHIVE_SPECIAL_FILE", "fifo", id="zip-fifo"),
        pytest.param(
            tgz(tar_file("bad\nname.psf")), "tar.gz", None, "ARCHIVE_BAD_NAME", "bad\\nname.psf", id="newline"
        ),
        pytest.param(
            tgz(tar_file("toppar\\x.prm")), "tar.gz", None, "ARCHIVE_BAD_NAME", "toppar\\x.prm", id="backslash"
        ),
        pytest.param(tgz(tar_file("a\x1b[2J.psf")), "tar.gz", None, "ARCHIVE_BAD_NAME", "a\\x1b[2J.psf", id="escape"),
        pytest.param(tgz(tar_file("a\u202egnp.psf")), "tar.gz", None, "ARCHIVE_BAD_NAME", "a\\u202egnp.psf", id="rtl"),
        pytest.param(
            tgz(tar_file("caf\udce9.psf"), format=tarfile.GNU_FORMAT, errors="surrogateescape"),
            "tar.gz",
            None,
            "ARCHIVE_BAD_NAME",
            "caf\\udce9.psf",
            id="not-utf8",
        ),
        pytest.param(zip_named("aXb.psf", b"a\0b.psf"), "zip", None, "ARCHIVE_BAD_NAME", "a\\x00b.psf", id="zip-nul"),
        pytest.param(
            tgz(tar_file(f"{ROOT}/toppar/" + "p" * 30)),
            "tar.gz",
            SHORT_NAMES,
            "ARCHIVE_BAD_NAME",
            f"{ROOT}/toppar/" + "p" * 30,
            id="too-long",
        ),
        pytest.param(tgz(tar_file("a/b/c/d.psf")), "tar.gz", SHALLOW, "ARCHIVE_BAD_NAME", "a/b/c/d.psf", id="too-deep"),
        pytest.param(
            tgz(tar_file("a/" + "é" * 128)), "tar.gz", None, "ARCHIVE_BAD_NAME", "a/" + "é" * 128, id="256-byte-part"
        ),
        pytest.param(eleven_files("tar.gz"), "tar.gz", FEW_FILES, "ARCHIVE_TOO_MANY_FILES", "", id="too-many"),
        pytest.param(eleven_files("zip"), "zip", FEW_FILES, "ARCHIVE_TOO_MANY_FILES", "", id="zip-too-many"),
        pytest.param(
            tgz(tar_file("inputs/a.psf", b"a" * 600), tar_file("inputs/b.psf", b"b" * 600)),
            "tar.gz",
            SMALL,
            "ARCHIVE_TOO_LARGE",
            "inputs/b.psf",
            id="too-large",
        ),
        pytest.param(
            zip_of(("inputs/a.psf", b"a" * 600), ("inputs/b.psf", b"b" * 600)),
            "zip",
            SMALL,
            "ARCHIVE_TOO_LARGE",
            "inputs/b.psf",
            id="zip-too-large",
        ),
        pytest.param(
            a_tgz_of_zeros,
            "tar.gz",
            None,
            "ARCHIVE_RATIO",
            f"{ROOT}/zeros.coor",
            id="tgz-of-zeros",
        ),
        pytest.param(tgz(tar_file("a.psf"), tar_file("a.psf")), "tar.gz", None, "ARCHIVE_DUPLICATE", "a.psf", id="dup"),
        pytest.param(
            tgz(tar_file("toppar/x.prm"), tar_file("./toppar//x.prm")),
            "tar.gz",
            None,
            "ARCHIVE_DUPLICATE",
            "./toppar//x.prm",
            id="dup-normalized",
        ),
        pytest.param(
            tgz(tar_file("toppar"), tar_file("toppar/x.prm")),
            "tar.gz",
            None,
            "ARCHIVE_DUPLICATE",
            "toppar/x.prm",
            id="file-then-folder",
        ),
        pytest.param(
            tgz(tar_file("a.psf"), tar_entry("a.psf", tarfile.DIRTYPE)),
            "tar.gz",
            None,
            "ARCHIVE_DUPLICATE",
            "a.psf",
            id="file-then-folder-entry",
        ),
        pytest.param(
            zip_of(("a.psf", b"x"), ("a.psf", b"y")),
            "zip",
            None,
            "ARCHIVE_DUPLICATE",
            "a.psf",
            id="zip-dup",
            marks=pytest.mark.filterwarnings("ignore:Duplicate name"),
        ),
        pytest.param(
            zip_of(("toppar/x.prm", b"x"), ("toppar", b"x")),
            "zip",
            None,
            "ARCHIVE_DUPLICATE",
            "toppar",
            id="zip-folder-then-file",
        ),
        pytest.param(
            cut(charmm_gui("tar.gz"), lambda size: size // 2),
            "tar.gz",
            None,
            "ARCHIVE_CORRUPT",
            None,
            id="truncated-tgz",
        ),
        pytest.param(
            cut(charmm_gui("tar.gz"), lambda size: size - 4),
            "tar.gz",
            None,
            "ARCHIVE_CORRUPT",
            None,
            id="tgz-without-its-length",
        ),
        pytest.param(
            flip(charmm_gui("tar.gz"), lambda size: size - 6), "tar.gz", None, "ARCHIVE_CORRUPT", None, id="tgz-bad-crc"
        ),
        pytest.param(a_tar_ending_after_its_first_member, "tar", None, "ARCHIVE_CORRUPT", "", id="tar-cut-at-member"),
        pytest.param(
            cut(charmm_gui("zip"), lambda size: size // 2), "zip", None, "ARCHIVE_CORRUPT", "", id="truncated-zip"
        ),
        pytest.param(
            flip(
                one_member_zip(CHARMM_GUI_FILES["step3_input.pdb"]),
                lambda size: 30 + len(f"{ROOT}/step3_input.psf") + 5,
            ),
            "zip",
            None,
            "ARCHIVE_CORRUPT",
            f"{ROOT}/step3_input.psf",
            id="corrupt-zip",
        ),
        pytest.param(
            tar_with_a_size_header(10, b"PSF \n" * 1000, compressed=True),
            "tar.gz",
            None,
            "ARCHIVE_CORRUPT",
            "",
            id="tar-member-longer-than-its-header",
        ),
        pytest.param(
            tar_with_a_size_header(100_000, b"PSF \n" * 20, compressed=False),
            "tar",
            None,
            "ARCHIVE_CORRUPT",
            f"{ROOT}/step3_input.psf",
            id="tar-member-shorter-than-its-header",
        ),
        pytest.param(
            zip_patched("size", 1000),
            "zip",
            None,
            "ARCHIVE_CORRUPT",
            f"{ROOT}/step3_input.psf",
            id="zip-member-longer-than-its-header",
        ),
        pytest.param(
            zip_patched("size", 6000),
            "zip",
            None,
            "ARCHIVE_CORRUPT",
            f"{ROOT}/step3_input.psf",
            id="zip-member-shorter-than-its-header",
        ),
        pytest.param(
            tgz(tar_file("a.psf", pax_headers={"comment": "x" * (2 * MiB)})),
            "tar.gz",
            None,
            "ARCHIVE_CORRUPT",
            "",
            id="huge-pax-header",
        ),
        pytest.param(zip_patched("flags", 0x1), "zip", None, "ARCHIVE_ENCRYPTED", f"{ROOT}/step3_input.psf", id="enc"),
        pytest.param(
            zip_patched("method", 9), "zip", None, "ARCHIVE_UNSUPPORTED", f"{ROOT}/step3_input.psf", id="deflate64"
        ),
        pytest.param(
            tgz(tar_entry("a.psf", tarfile.GNUTYPE_SPARSE), format=tarfile.GNU_FORMAT),
            "tar.gz",
            None,
            "ARCHIVE_UNSUPPORTED",
            "a.psf",
            id="sparse",
        ),
        pytest.param(charmm_gui("zip"), "tar.gz", None, "ARCHIVE_WRONG_KIND", "", id="zip-as-tgz"),
        pytest.param(charmm_gui("tar.gz"), "zip", None, "ARCHIVE_WRONG_KIND", "", id="tgz-as-zip"),
        pytest.param(charmm_gui("tar.gz"), "tar", None, "ARCHIVE_WRONG_KIND", "", id="tgz-as-tar"),
        pytest.param(gzip_of_text, "tar.gz", None, "ARCHIVE_WRONG_KIND", "", id="gzip-of-a-psf"),
        pytest.param(bare_file, "tar", None, "ARCHIVE_WRONG_KIND", "", id="psf-as-tar"),
    ],
)
def test_a_hostile_or_broken_archive_is_refused_and_leaves_nothing(
    build: Builder,
    kind: str,
    limits: ArchiveLimits | None,
    code: str,
    member: str | None,
    archives: Path,
    destination: Path,
) -> None:
    refused = refusal(build(archives), destination, kind, limits)

    assert refused.code == code
    if member is not None:
        assert refused.member == member
    assert refused.message != ""


def test_a_refused_members_name_is_escaped_for_messages_and_logs(archives: Path, destination: Path) -> None:
    refused = refusal(tgz(tar_file("bad\nname.psf"))(archives), destination, "tar.gz")

    assert "\n" not in refused.member
    assert "'bad\\nname.psf'" in refused.message


def test_a_zip_bomb_is_refused_by_its_ratio_before_it_inflates(tmp_path: Path, destination: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    zeros = bytes(MiB)
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(f"{ROOT}/zeros.dcd", "w", force_zip64=True) as out,
    ):
        for _ in range(1024):  # 1 GiB, streamed: about 1 MB compressed
            out.write(zeros)
    assert bomb.stat().st_size < 2 * MiB

    started = time.monotonic()
    refused = refusal(bomb, destination, "zip")

    assert (refused.code, refused.member) == ("ARCHIVE_RATIO", f"{ROOT}/zeros.dcd")
    assert time.monotonic() - started < 1.0  # inflating 1 GiB takes seconds; the header was enough


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_one_member_expanding_too_much_is_refused_though_the_whole_archive_does_not(
    kind: str, archives: Path, destination: Path
) -> None:
    # The random file keeps the whole archive far under 200:1; the zeros alone go far over. A zip says so
    # up front; a tgz member is measured against the compressed bytes read while it streams.
    members = {f"{ROOT}/step5.dcd": os.urandom(4 * MiB), f"{ROOT}/zeros.coor": bytes(64 * MiB)}
    if kind == "zip":
        archive = write_zip(archives / "mixed.zip", list(members.items()))
    else:
        archive = write_tar(archives / "mixed.tgz", [tar_file(*member) for member in members.items()], compresslevel=6)
    assert (68 * MiB) / archive.stat().st_size < 20

    refused = refusal(archive, destination, kind)

    assert (refused.code, refused.member) == ("ARCHIVE_RATIO", f"{ROOT}/zeros.coor")


def test_many_members_each_within_the_ratio_are_refused_by_the_whole_archives(
    archives: Path, destination: Path
) -> None:
    # Each 4 MiB of zeros is within what a tgz member's measure tolerates; twenty of them from 80 KB are not.
    archive = write_tar(
        archives / "zeros.tgz", [tar_file(f"{ROOT}/zeros_{number}.coor", bytes(4 * MiB)) for number in range(20)]
    )
    assert archive.stat().st_size < 200 * 1024

    refused = refusal(archive, destination, "tar.gz")

    assert refused.code == "ARCHIVE_RATIO"
    assert refused.member.startswith(f"{ROOT}/zeros_") is True


def test_a_zip_listing_too_many_members_is_refused_before_zipfile_loads_them(archives: Path, destination: Path) -> None:
    # 70,000 members: past 65,535, so zipfile writes zip64 end records. Loading them takes zipfile ~30 MB.
    archive = archives / "many.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as many:
        for number in range(70_000):
            many.writestr(zipfile.ZipInfo(f"{ROOT}/{number}.prm"), b"")

    tracemalloc.start()
    try:
        refused = refusal(archive, destination, "zip")
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert refused.code == "ARCHIVE_TOO_MANY_FILES"
    assert peak_bytes < 2 * MiB


@pytest.mark.parametrize("existing", ["folder", "symlink"])
def test_an_archive_never_overwrites_what_the_destination_holds(
    existing: str, archives: Path, destination: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if existing == "folder":
        (destination / "toppar").mkdir()
        (destination / "toppar" / "par_all36m_prot.prm").write_bytes(b"the member's own edited parameters\n")
    else:
        (destination / "toppar").symlink_to(elsewhere)

    refused = refusal(build_charmm_gui("tar.gz", archives), destination, "tar.gz")

    assert (refused.code, refused.member) == ("ARCHIVE_DESTINATION_CONFLICT", "toppar")
    assert os.listdir(elsewhere) == []
