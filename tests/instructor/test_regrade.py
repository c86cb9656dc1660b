"""Submit → regrade: scores come from the evidence, tampering is flagged, the CSV has a row per learner."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from grader.instructor.bundle import extract
from grader.instructor.regrade import regrade_many, write_csv
from grader.instructor.submit import submit
from tests.instructor._instructor_lab import answer, app_for, read_members, workspace, write_members


def rehash(members: dict[str, bytes], **meta_changes) -> dict[str, bytes]:
    """What a careful cheat does: change the evidence and recompute every hash in the metadata."""
    meta = json.loads(members["cks-bundle.json"])
    meta["files"] = {k: hashlib.sha256(v).hexdigest() for k, v in members.items() if k != "cks-bundle.json"}
    meta.update(meta_changes)
    return {**members, "cks-bundle.json": json.dumps(meta).encode()}


def test_submit_writes_evidence_result_and_hashes(lab90, tmp_path: Path) -> None:
    ws = workspace(lab90, tmp_path, "alice")
    sub = submit(lab90, ws, tmp_path / "alice.tar.gz", "alice")
    meta = sub.meta
    assert (meta["lab"], meta["lab_version"], meta["seed"], meta["learner"]) == ("lab90", 1, "alice", "alice")
    assert meta["grader_version"] and meta["started"] and meta["submitted"]
    app = app_for(lab90, "alice")
    members = read_members(sub.path)
    assert f"snapshot/nodes/controlplane/etc/{app}/config.yaml" in members
    assert json.loads(members["result.json"])["score"] == 3
    for name, data in members.items():
        if name != "cks-bundle.json":
            assert meta["files"][name] == hashlib.sha256(data).hexdigest()
    ex = extract(sub.path, tmp_path / "x")
    assert ex.problems == []


def test_regrade_ignores_the_claimed_score_and_flags_it(lab90, tmp_path: Path) -> None:
    ws = workspace(lab90, tmp_path, "bob", files=())
    bundle = submit(lab90, ws, tmp_path / "bob.tar.gz", "bob").path
    members = read_members(bundle)
    result = json.loads(members["result.json"])
    result["score"] = 3
    result["tasks"] = [{**t, "status": "pass", "points": t["max_points"]} for t in result["tasks"]]
    members["result.json"] = json.dumps(result).encode()
    write_members(bundle, rehash(members, claimed_score=3))
    [r] = regrade_many([bundle]).bundles
    assert r.score == 0
    assert any("score mismatch: the bundle claims 3, the evidence earns 0" in f for f in r.flags)


def test_hash_mismatch_is_flagged(lab90, tmp_path: Path) -> None:
    ws = workspace(lab90, tmp_path, "carol", files=("config.yaml",))
    bundle = submit(lab90, ws, tmp_path / "carol.tar.gz", "carol").path
    members = read_members(bundle)
    app = app_for(lab90, "carol")
    members[f"snapshot/nodes/controlplane/etc/{app}/policy.yaml"] = b"added after grading\n"
    members[f"snapshot/nodes/controlplane/etc/{app}/config.yaml"] = b"edited after grading\n"
    write_members(bundle, members)
    [r] = regrade_many([bundle]).bundles
    text = " | ".join(r.flags)
    assert "tampering: hash mismatch" in text and "config.yaml" in text
    assert "tampering: not listed in the metadata" in text and "policy.yaml" in text
    assert r.score == 3  # graded as found; the flag tells the instructor not to trust it


def test_seed_mismatch_against_metadata_and_roster(lab90, tmp_path: Path) -> None:
    # dave does erin's lab (seed erin) and relabels the metadata with his own seed
    ws = workspace(lab90, tmp_path, "erin")
    bundle = submit(lab90, ws, tmp_path / "dave.tar.gz", "dave").path
    members = read_members(bundle)
    write_members(bundle, rehash(members, seed="dave"))
    [r] = regrade_many([bundle]).bundles
    assert any(
        "seed mismatch: the metadata says 'dave', the workspace was started with 'erin'" in f for f in r.flags
    )
    # with the roster, dave is graded on his own seed's answer and the copied answer fails
    assert app_for(lab90, "dave") != app_for(lab90, "erin")
    [r] = regrade_many([bundle], roster={"dave": "dave"}).bundles
    assert any("the roster assigns 'dave'" in f for f in r.flags)
    assert r.seed == "dave" and r.score == 0


def test_identical_evidence_across_learners(lab90, tmp_path: Path) -> None:
    ws = workspace(lab90, tmp_path, "same")
    a = submit(lab90, ws, tmp_path / "a.tar.gz", "frank").path
    b = submit(lab90, ws, tmp_path / "b.tar.gz", "grace").path
    # heidi does the same lab on her own: same seed would be a copy, so she has another seed
    c = submit(lab90, workspace(lab90, tmp_path, "heidi"), tmp_path / "c.tar.gz", "heidi").path
    # ivan did nothing, like judy: empty work is not "identical evidence"
    d = submit(lab90, workspace(lab90, tmp_path, "same", files=()), tmp_path / "d.tar.gz", "ivan").path
    e = submit(lab90, workspace(lab90, tmp_path, "same", files=()), tmp_path / "e.tar.gz", "judy").path
    res = {r.learner: r for r in regrade_many([a, b, c, d, e]).bundles}
    assert any("identical evidence: the same changes as grace" in f for f in res["frank"].flags)
    assert any("identical evidence: the same changes as frank" in f for f in res["grace"].flags)
    for name in ("heidi", "ivan", "judy"):
        assert not any("identical" in f for f in res[name].flags), res[name].flags


def test_later_submission_supersedes(lab90, tmp_path: Path) -> None:
    ws = workspace(lab90, tmp_path, "kim", files=("config.yaml",))
    first = submit(lab90, ws, tmp_path / "k1.tar.gz", "kim").path
    answer(ws, app_for(lab90, "kim"))
    second = submit(lab90, ws, tmp_path / "k2.tar.gz", "kim").path
    members = read_members(second)
    write_members(second, rehash(members, submitted="2999-01-01T00:00:00Z"))
    cls = regrade_many([first, second])
    [row] = cls.learners()
    assert row.score == 3 and row.max_score == 3 and not row.errors


def test_csv_row_per_learner_column_per_task(lab90, tmp_path: Path) -> None:
    bundles = [
        submit(lab90, workspace(lab90, tmp_path, "s-ann"), tmp_path / "ann.tar.gz", "ann").path,
        submit(
            lab90, workspace(lab90, tmp_path, "s-ben", ("config.yaml",)), tmp_path / "ben.tar.gz", "ben"
        ).path,
        submit(
            lab90, workspace(lab90, tmp_path, "s-cat", ("policy.yaml",)), tmp_path / "cat.tar.gz", "cat"
        ).path,
        submit(lab90, workspace(lab90, tmp_path, "s-dan", ()), tmp_path / "=cmd().tar.gz", "dan").path,
    ]
    (tmp_path / "bad.tar.gz").write_bytes(b"nope")
    cls = regrade_many([*bundles, tmp_path / "bad.tar.gz"], jobs=2)
    write_csv(cls, tmp_path / "class.csv")
    rows = list(csv.DictReader((tmp_path / "class.csv").read_text().splitlines()))
    header = list(rows[0].keys())
    assert header[:10] == [
        "learner",
        "status",
        "score",
        "max_score",
        "percent",
        "held_score",
        "lab90.total",
        "lab90.t1",
        "lab90.t2",
        "lab90.t3",
    ]
    # the live-only task is not graded offline: blank, and not counted in the maximum
    assert {r["lab90.t3"] for r in rows} == {""}
    got = {
        r["learner"]: (r["score"], r["max_score"], r["percent"], r["lab90.t1"], r["lab90.t2"]) for r in rows
    }
    assert got["ann"] == ("3", "3", "100", "2", "1")
    assert got["ben"] == ("2", "3", "66.7", "2", "0")
    assert got["cat"] == ("1", "3", "33.3", "0", "1")
    assert got["dan"] == ("0", "3", "0", "0", "0")
    # learner-controlled text (here a bundle's file name) cannot become a spreadsheet formula
    assert [r["bundles"] for r in rows if r["learner"] == "dan"] == ["'=cmd().tar.gz"]
    bad = [r for r in rows if r["learner"] == "?bad.tar.gz"]
    assert bad and "not a gzip file" in bad[0]["errors"] and bad[0]["lab90.t1"] == ""
    assert len(rows) == 5


def test_bundle_for_a_lab_the_instructor_does_not_have(lab90, tmp_path: Path) -> None:
    bundle = submit(lab90, workspace(lab90, tmp_path, "x"), tmp_path / "x.tar.gz", "xavier").path
    members = read_members(bundle)
    write_members(bundle, rehash(members, lab="lab99"))
    [r] = regrade_many([bundle]).bundles
    assert r.learner == "xavier" and r.error.startswith("cannot grade: no lab 'lab99'")
