"""A simulated class of 8 learners on lab3, regraded end to end (issue 13, "Must show").

ana    the reference solution                       counted, full marks
ben    a wrong priority (a trap fixture)            counted, partial
cara   nothing handed in                            row "no submission", 0 in the gradebooks
dev    handed in a day after the deadline           held as late, then accepted with --accept: 10% off
eli    edited a file after `cks submit`             held (hash mismatch), blank in the gradebooks
fay    her own correct answer (own macros)          held: gil's answer is a near copy of hers
gil    fay's answer, one comment added, rules reordered, his own seed   held: similar to fay
hal    a wrong answer with an instructor's override     counted, with the override's points and comment
zed    not on the roster                            held, flagged "not on the roster"
junk   a damaged upload                             a row saying why; no gradebook line, no feedback

Run as a script (`python -m tests.instructor.test_class_simulation OUT`) to write the outputs to a folder.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.instructor._instructor_lab import read_members as _members
from tests.instructor._instructor_lab import write_members as _rewrite

REPO = Path(__file__).resolve().parents[2]
LEARNERS = ["ana", "ben", "cara", "dev", "eli", "fay", "gil", "hal"]
RULES = "nodes/controlplane/etc/falco/falco_rules.local.yaml"
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)

pytestmark = pytest.mark.slow


def _swap_two_rules_and_comment(text: str) -> str:
    """The near copy: the same YAML items, two rules swapped, one comment added."""
    blocks = re.split(r"\n(?=- )", text.strip())
    rules = [i for i, b in enumerate(blocks) if b.startswith("- rule:")]
    a, b = rules[-2], rules[-1]
    blocks[a], blocks[b] = blocks[b], blocks[a]
    return "# my rules, written by me\n" + "\n\n".join(blocks) + "\n"


class _Classroom:
    """lab3, the folder the bundles go to, and the two steps every learner takes: start a workspace, hand it
    in."""

    def __init__(self, out: Path) -> None:
        from grader.labs import get_lab

        self.out = out
        self.lab = get_lab("lab3")
        self.fixtures = REPO / "tests" / "labs" / "lab3"
        self.bundles = out / "bundles"
        self.bundles.mkdir(parents=True)

    def start(self, name: str, seed: str | None = None) -> Path:
        from grader.workspace import materialize

        ws = self.out / "ws" / name
        materialize(self.lab, ws, seed or name)
        return ws

    def solved(self, name: str, seed: str | None = None) -> Path:
        from grader.solutions import apply_solution

        ws = self.start(name, seed)
        apply_solution(self.lab, ws, seed or name)
        return ws

    def fixture(self, ws: Path, fixture: str, name: str) -> None:
        """Applies a lab3 fixture (overlay, deletions, edits) to a workspace that holds the solution."""
        from grader.selftest import apply_fixture
        from grader.variants import values_for

        apply_fixture(self.fixtures / fixture, ws, values_for(self.lab, name))

    def hand_in(self, name: str, ws: Path) -> Path:
        from grader.instructor.submit import submit

        return submit(self.lab, ws, self.bundles / f"{name}-lab3.tar.gz", name).path


def _hand_in_reference_and_wrong_priority(room: _Classroom) -> None:
    """ana: the reference solution; ben: a trap fixture, with a hint record in his bundle."""
    from grader import progress

    room.hand_in("ana", room.solved("ana"))
    ws = room.solved("ben")
    room.fixture(ws, "wrong/wrong_priority", "ben")
    progress.record_hint(ws, "lab3", "t1", 2)  # ben asked for hints; the record travels in his bundle
    room.hand_in("ben", ws)


def _hand_in_late(room: _Classroom) -> None:
    """dev: the solution, its submission time moved to a day after the deadline."""
    late = room.hand_in("dev", room.solved("dev"))
    members = _members(late)
    meta = json.loads(members["cks-bundle.json"])
    meta["submitted"] = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    members["cks-bundle.json"] = json.dumps(meta).encode()
    _rewrite(late, members)


def _hand_in_tampered(room: _Classroom) -> None:
    """eli: a wrong answer, the solved rules file swapped into the bundle after `cks submit`."""
    ws = room.solved("eli")
    room.fixture(ws, "wrong/open_only", "eli")
    tampered = room.hand_in("eli", ws)
    members = _members(tampered)
    solved = room.solved("eli-solved", "eli")
    members[f"snapshot/{RULES}"] = (solved / RULES).read_bytes()  # swapped in after submitting
    _rewrite(tampered, members)


def _hand_in_near_copies(room: _Classroom) -> None:
    """fay: her own correct answer; gil: the same answer, rules reordered and a comment added."""
    ws = room.start("fay")
    room.fixture(ws, "correct/own_macros_lowercase", "fay")
    room.hand_in("fay", ws)
    ws = room.start("gil")
    room.fixture(ws, "correct/own_macros_lowercase", "gil")
    (ws / RULES).write_text(_swap_two_rules_and_comment((ws / RULES).read_text()))
    room.hand_in("gil", ws)


def _hand_in_overridden_and_unlisted(room: _Classroom) -> None:
    """hal: a wrong rule name the instructor overrides; zed: not on the roster; a damaged upload."""
    ws = room.solved("hal")
    room.fixture(ws, "wrong/wrong_rule_name", "hal")
    room.hand_in("hal", ws)
    room.hand_in("zed", room.solved("zed"))
    (room.bundles / "junk.tar.gz").write_bytes(b"not a bundle")  # a damaged upload: a row with the reason


def _write_roster(out: Path) -> Path:
    roster = out / "roster.csv"
    with open(roster, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["learner", "seed", "name", "email", "sis_id", "section"])
        for i, name in enumerate(LEARNERS):
            w.writerow([name, name, name.title() + " Example", f"{name}@example.edu", f"S{1000 + i}", "A"])
    return roster


def _write_overrides(out: Path) -> Path:
    overrides = out / "overrides.csv"
    overrides.write_text(
        "learner,lab,task,points,comment\nhal,lab3,t1,3,Rule name typo only: full marks after review\n"
    )
    return overrides


def _regrade(bundles: Path, roster: Path, overrides: Path, reports: Path) -> int | str | None:
    """`cks regrade` on every bundle with the roster, overrides, --accept dev, a deadline an hour from now
    and every report; returns its exit code."""
    from grader.cli import main

    deadline = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    argv = [
        "cks",
        "regrade",
        *sorted(str(p) for p in bundles.iterdir()),
        "--roster",
        str(roster),
        "--overrides",
        str(overrides),
        "--accept",
        "dev",
        "--deadline",
        deadline,
        "--late-penalty",
        "10",
        "--csv",
        str(reports / "class.csv"),
        "--stats",
        str(reports / "stats.csv"),
        "--canvas",
        str(reports / "canvas.csv"),
        "--moodle",
        str(reports / "moodle.csv"),
        "--feedback",
        str(reports / "feedback"),
        "--html",
        str(reports / "class.html"),
        "--jobs",
        "2",
    ]
    old = sys.argv
    sys.argv = argv
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = old
    return code


def build_class(out: Path) -> dict[str, object]:
    room = _Classroom(out)
    _hand_in_reference_and_wrong_priority(room)
    _hand_in_late(room)
    _hand_in_tampered(room)
    _hand_in_near_copies(room)
    _hand_in_overridden_and_unlisted(room)
    roster, overrides = _write_roster(out), _write_overrides(out)
    reports = out / "reports"
    reports.mkdir()
    code = _regrade(room.bundles, roster, overrides, reports)
    return {"exit": code, "reports": reports, "max": sum(t.points for t in room.lab.tasks if not t.live)}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return build_class(tmp_path_factory.mktemp("class"))


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def test_class_csv_has_every_roster_learner_and_holds_the_flagged(sim) -> None:
    assert sim["exit"] == 1  # something is held
    rows = {r["learner"]: r for r in _csv(sim["reports"] / "class.csv")}
    full = f"{sim['max']:g}"
    assert set(rows) == {*LEARNERS, "zed", "?junk.tar.gz"}
    assert (
        rows["?junk.tar.gz"]["status"] == "bad bundle" and "not a gzip file" in rows["?junk.tar.gz"]["errors"]
    )
    assert rows["ana"]["status"] == "graded" and rows["ana"]["score"] == full and not rows["ana"]["flags"]
    assert rows["ben"]["status"] == "graded" and 0 < float(rows["ben"]["score"]) < sim["max"]
    assert "hints: t1 tier 2" in rows["ben"]["notes"] and "hints" not in rows["ana"]["notes"]
    assert rows["cara"]["status"] == "no submission" and rows["cara"]["score"] == "0"
    assert rows["cara"]["max_score"] == full  # the missing lab still counts towards the maximum
    # late, accepted, penalised 10% of the lab's points (one started day)
    assert "late:" in rows["dev"]["flags"] and rows["dev"]["status"] == "graded"
    assert float(rows["dev"]["score"]) == pytest.approx(sim["max"] * 0.9)
    assert "accepted with --accept" in rows["dev"]["notes"] and "late penalty" in rows["dev"]["notes"]
    # tampered: held, its score shown apart and not counted
    assert rows["eli"]["status"] == "held" and rows["eli"]["score"] == "0"
    assert "hash mismatch" in rows["eli"]["flags"] and float(rows["eli"]["held_score"]) > 0
    for name, other in (("fay", "gil"), ("gil", "fay")):
        assert (
            rows[name]["status"] == "held"
            and "similar:" in rows[name]["flags"]
            and other in rows[name]["flags"]
        )
        assert "identical evidence" not in rows[name]["flags"]  # not byte-identical: normalised similarity
    assert not any(
        "similar" in rows[n]["flags"] for n in ("ana", "dev", "zed")
    )  # the reference is not a copy
    assert rows["hal"]["status"] == "graded" and rows["hal"]["lab3.t1"] == "3"
    assert "Rule name typo only" in rows["hal"]["comments"]
    assert rows["zed"]["status"] == "held" and "not on the roster" in rows["zed"]["flags"]


def test_statistics_csv(sim) -> None:
    stats = {r["column"]: r for r in _csv(sim["reports"] / "stats.csv")}
    assert set(stats) == {f"lab3.t{i}" for i in range(1, 6)}
    for r in stats.values():
        if r["live_only"] == "True":  # needs a live cluster: skipped offline for every bundle
            assert (r["graded"], r["skipped"]) == ("0", "8")
            continue
        assert int(r["graded"]) == 8  # every bundle regraded (cara has none)
        assert int(r["passed"]) + int(r["failed"]) + int(r["errors"]) == 8
    assert int(stats["lab3.t1"]["failed"]) >= 1 and stats["lab3.t1"]["most_common_failure"]


def test_gradebooks_in_canvas_and_moodle_layouts(sim) -> None:
    full = f"{sim['max']:g}"
    with open(sim["reports"] / "canvas.csv", newline="") as fh:
        canvas = list(csv.reader(fh))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert (
        canvas[0][5].startswith("CKS lab3: ")
        and canvas[1][0] == "    Points Possible"
        and canvas[1][5] == full
    )
    by_login = {r[3]: r for r in canvas[2:]}
    assert set(by_login) == {*LEARNERS, "zed"}  # the damaged upload names no learner
    assert (
        by_login["ana"][0] == "Ana Example" and by_login["ana"][2] == "S1000" and by_login["ana"][5] == full
    )
    assert by_login["cara"][5] == "0" and by_login["eli"][5] == "" and by_login["gil"][5] == ""
    moodle = _csv(sim["reports"] / "moodle.csv")
    col = next(c for c in moodle[0] if c.startswith("CKS lab3: ") and not c.endswith("(feedback)"))
    by_id = {r["ID number"]: r for r in moodle}
    assert by_id["ana"]["Email address"] == "ana@example.edu" and by_id["ana"][col] == full
    assert by_id["eli"][col] == "" and by_id["eli"][col + " (feedback)"] == "held for review"
    assert by_id["cara"][col + " (feedback)"] == "no submission"
    assert "Rule name typo only" in by_id["hal"][col + " (feedback)"]


def test_feedback_files(sim) -> None:
    fb = sim["reports"] / "feedback"
    for name in [*LEARNERS, "zed"]:
        assert (fb / f"{name}.md").is_file() and (fb / f"{name}.html").is_file()
    assert len(list(fb.iterdir())) == 2 * 9
    hal = (fb / "hal.md").read_text()
    assert "| t1:" in hal and "Rule name typo only" in hal and "3/3" in hal
    assert "No submission was received." in (fb / "cara.md").read_text()
    assert "held for review" in (fb / "eli.md").read_text()
    assert "hash mismatch" not in (fb / "eli.md").read_text()  # flags are for the instructor
    ana = (fb / "ana.html").read_text()
    assert ana.count("class='pass'") == 3 and ana.count("class='skip'") == 2 and "<script" not in ana


GEOMETRY_JS = """
<script>
window.addEventListener('load', function(){
  var W = window.innerWidth, out = {width: W, rows: {}};
  document.querySelectorAll('tr[data-learner]').forEach(function(tr){
    var cell = tr.querySelector('td.flags'), r = cell.getBoundingClientRect();
    var inner = Array.from(cell.querySelectorAll('div')).map(function(d){
      return d.getBoundingClientRect().right;
    });
    out.rows[tr.dataset.learner] = {left: r.left, right: r.right,
      clipped: cell.scrollWidth > cell.clientWidth + 1,
      innerRight: inner.length ? Math.max.apply(null, inner) : 0, flagged: tr.classList.contains('flagged'),
      bg: getComputedStyle(tr.children[0]).backgroundColor,
      border: getComputedStyle(tr.children[0]).borderLeftWidth};
  });
  var th = document.querySelector('th.flags').getBoundingClientRect();
  out.header = {left: th.left, right: th.right};
  var pre = document.createElement('pre'); pre.id = 'geometry'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


@pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)"
)
def test_html_in_headless_chromium_flags_visible_and_flagged_rows_highlighted(sim, tmp_path: Path) -> None:
    page = tmp_path / "measure.html"
    page.write_text((sim["reports"] / "class.html").read_text().replace("</body>", GEOMETRY_JS + "</body>"))
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,1000",
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"<pre id=\"geometry\">(.*?)</pre>", proc.stdout, re.S)
    assert m, proc.stderr[-2000:]
    geo = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert geo["width"] == 1400
    assert geo["header"]["left"] >= 0 and geo["header"]["right"] <= 1400
    for learner, row in geo["rows"].items():
        assert row["right"] <= 1400 and not row["clipped"], (learner, row)
        assert row["innerRight"] <= 1400, (learner, row)
    flagged = {k for k, v in geo["rows"].items() if v["flagged"]}
    assert {"dev", "eli", "fay", "gil", "zed"} <= flagged and "ana" not in flagged
    plain_bg = geo["rows"]["ana"]["bg"]
    for learner in flagged:
        assert geo["rows"][learner]["bg"] != plain_bg, (learner, geo["rows"][learner]["bg"], plain_bg)
        assert geo["rows"][learner]["border"] != geo["rows"]["ana"]["border"]


if __name__ == "__main__":  # write a simulated class's outputs to a folder, for a look by hand
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "class-simulation")
    print(build_class(dest))
