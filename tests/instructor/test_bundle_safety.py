"""Bundles are untrusted: extraction refuses what could escape or exhaust, and a bad bundle spoils only its
row."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from grader.instructor.bundle import BundleError, Limits, extract
from grader.instructor.regrade import regrade_many
from grader.instructor.submit import submit
from tests.instructor._instructor_lab import workspace

META = {"format": 1, "lab": "lab90", "learner": "mallory", "seed": None, "files": {}}


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], compress: bool = True) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    raw = buf.getvalue()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def reg(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def special(name: str, kind: bytes, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in attrs.items():
        setattr(info, k, v)
    return info


def meta_member() -> tuple[tarfile.TarInfo, bytes]:
    return reg("cks-bundle.json"), json.dumps(META).encode()


def assert_nothing_escaped(tmp_path: Path, before: set[Path]) -> None:
    outside = {p for p in tmp_path.parent.rglob("*")} - before
    escaped = [p for p in outside if tmp_path not in p.parents and p != tmp_path]
    assert not escaped, f"files written outside the extraction directory: {escaped}"


@pytest.mark.parametrize(
    "case, members, reason",
    [
        ("traversal", [(reg("snapshot/../../evil.txt"), b"x")], "path traversal"),
        ("traversal-top", [(reg("../evil.txt"), b"x")], "path traversal"),
        ("absolute", [(reg("/tmp/cks-evil-abs.txt"), b"x")], "absolute path"),
        (
            "symlink",
            [(special("snapshot/nodes/cp/etc/passwd", tarfile.SYMTYPE, linkname="/etc/passwd"), None)],
            "link",
        ),
        ("hardlink", [(special("snapshot/x", tarfile.LNKTYPE, linkname="cks-bundle.json"), None)], "link"),
        ("chardev", [(special("snapshot/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)], "device"),
        ("blockdev", [(special("snapshot/sda", tarfile.BLKTYPE, devmajor=8, devminor=0), None)], "device"),
        ("fifo", [(special("snapshot/pipe", tarfile.FIFOTYPE), None)], "FIFO"),
        ("foreign-top", [(reg("bin/sh"), b"x")], "not part of a cks bundle"),
        ("backslash", [(reg("snapshot\\..\\..\\evil"), b"x")], "backslash"),
        ("duplicate", [(reg("snapshot/a"), b"1"), (reg("snapshot/a"), b"2")], "twice"),
        ("file-then-dir", [(reg("snapshot/a"), b"1"), (reg("snapshot/a/b"), b"2")], "under a file"),
    ],
)
def test_refuses_dangerous_members(tmp_path: Path, case: str, members, reason: str) -> None:
    bundle = make_tar(tmp_path / f"{case}.tar.gz", [meta_member(), *members])
    dest = tmp_path / "out" / "x"
    before = set(tmp_path.parent.rglob("*"))
    with pytest.raises(BundleError, match=reason):
        extract(bundle, dest)
    assert_nothing_escaped(tmp_path, before)
    assert not Path("/tmp/cks-evil-abs.txt").exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()


def test_stops_at_file_count_limit(tmp_path: Path) -> None:
    members = [meta_member()] + [(reg(f"snapshot/f{i}"), b"x") for i in range(30)]
    bundle = make_tar(tmp_path / "many.tar.gz", members)
    with pytest.raises(BundleError, match="more than 20 members"):
        extract(bundle, tmp_path / "x", Limits(max_files=20))


def test_stops_at_total_size_limit(tmp_path: Path) -> None:
    members = [meta_member()] + [(reg(f"snapshot/f{i}"), b"a" * 40_000) for i in range(5)]
    bundle = make_tar(tmp_path / "big.tar.gz", members)
    with pytest.raises(BundleError, match="more than"):
        extract(bundle, tmp_path / "x", Limits(max_total_bytes=100_000, max_file_bytes=60_000))


def test_stops_at_one_file_limit(tmp_path: Path) -> None:
    bundle = make_tar(tmp_path / "one.tar.gz", [meta_member(), (reg("snapshot/huge"), b"a" * 200_000)])
    with pytest.raises(BundleError, match="limit for one file"):
        extract(bundle, tmp_path / "x", Limits(max_file_bytes=100_000))


def test_gzip_bomb_stops_early_without_writing_it_out(tmp_path: Path) -> None:
    # 64 MB of zeros compresses to ~64 KB: the decompressed stream cap must stop it, not the disk
    path = tmp_path / "bomb.tar.gz"
    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = reg("cks-bundle.json")
        data = json.dumps(META).encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        info = reg("snapshot/zeros")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, _Zeros(info.size))
    assert path.stat().st_size < 1_000_000
    limits = Limits(max_total_bytes=2_000_000, max_file_bytes=100 * 1024 * 1024, max_files=10)
    with pytest.raises(BundleError, match="more than"):
        extract(path, tmp_path / "x", limits)
    written = sum(p.stat().st_size for p in (tmp_path / "x").rglob("*") if p.is_file())
    assert written < 4_000_000


class _Zeros(io.RawIOBase):
    def __init__(self, n: int):
        self.left = n

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def test_bundle_over_the_archive_size_limit_is_not_opened(tmp_path: Path) -> None:
    bundle = make_tar(tmp_path / "b.tar.gz", [meta_member(), (reg("snapshot/r"), b"x" * 5000)])
    with pytest.raises(BundleError, match="MB limit"):
        extract(bundle, tmp_path / "x", Limits(max_bundle_bytes=100))


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"plain text, not gzip", "not a gzip file"),
        (gzip.compress(b"not a tar archive" * 100, mtime=0)[:40], "damaged or truncated"),
        (gzip.compress(b"\0" * 1024, mtime=0), "no cks-bundle.json"),
    ],
)
def test_not_a_bundle(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / "b.tar.gz").write_bytes(content)
    with pytest.raises(BundleError, match=reason):
        extract(tmp_path / "b.tar.gz", tmp_path / "x")


@pytest.mark.parametrize(
    "meta, reason",
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({**META, "format": 99}).encode(), "unknown bundle format"),
        (json.dumps({**META, "lab": "../../etc"}).encode(), "'lab' must look like"),
        (json.dumps({**META, "learner": "<script>alert(1)</script>"}).encode(), "'learner'"),
        (json.dumps({**META, "files": ["x"]}).encode(), "'files'"),
    ],
)
def test_bad_metadata(tmp_path: Path, meta: bytes, reason: str) -> None:
    bundle = make_tar(tmp_path / "b.tar.gz", [(reg("cks-bundle.json"), meta)])
    with pytest.raises(BundleError, match=reason):
        extract(bundle, tmp_path / "x")


def test_a_bad_bundle_is_reported_in_its_row_and_the_class_is_graded(lab90, tmp_path: Path) -> None:
    good = []
    for i, seed in enumerate(["s1", "s2", "s3", "s4"]):
        ws = workspace(
            lab90, tmp_path, seed, files=("config.yaml",) if i % 2 else ("config.yaml", "policy.yaml")
        )
        good.append(submit(lab90, ws, tmp_path / f"l{i}.tar.gz", f"learner{i}").path)
    evil = make_tar(tmp_path / "evil.tar.gz", [meta_member(), (reg("snapshot/../../../evil"), b"x")])
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b garbage")
    result = regrade_many([*good, evil, junk], jobs=2)
    by_bundle = {r.bundle: r for r in result.bundles}
    assert "path traversal" in by_bundle["evil.tar.gz"].error
    assert "damaged" in by_bundle["junk.tar.gz"].error
    scores = sorted((r.learner, r.score) for r in result.bundles if r.error is None)
    assert scores == [("learner0", 3), ("learner1", 2), ("learner2", 3), ("learner3", 2)]


def test_huge_pax_header_hits_the_stream_cap(tmp_path: Path) -> None:
    # a header is not a member: only the cap on the decompressed stream stops a 6 MB pax record
    info = reg("snapshot/a")
    info.pax_headers = {"comment": "x" * 6_000_000}
    bundle = make_tar(tmp_path / "pax.tar.gz", [meta_member(), (info, b"1")])
    with pytest.raises(BundleError, match="decompresses to more than"):
        extract(
            bundle, tmp_path / "x", Limits(max_total_bytes=1_000_000, max_files=10, max_meta_bytes=100_000)
        )
