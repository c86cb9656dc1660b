"""A learner's course bundle computes no investigation answer (issue 13 item 3).

One bundle is built with `cks dist --roster` for one learner and installed into a fresh venv. There, no
public function of the package produces lab7's intruder or the Secrets it read, nor lab4's or lab6's
offenders, nor lab8's question 6, without grading an attempt; no shipped file outside the starting state
holds them; and the digests still grade: the learner's start scores 0 and the reference solution (laid on
by the instructor's checkout, outside the bundle) full marks.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.instructor._venv import make_venv, venv_env

REPO = Path(__file__).resolve().parents[2]
LEARNER, SEED = "ana", "ana-7f3"
LABS = ("lab4", "lab6", "lab7", "lab8")
pytestmark = pytest.mark.slow


def _full_kit_answers() -> dict[str, list[str]]:
    """What must stay hidden, computed with the full kit for the learner's seed."""
    from grader import variants
    from grader.checks.falco import offenders_from
    from grader.engines import podsec
    from grader.labs import get_lab
    from grader.workspace import pristine

    out: dict[str, list[str]] = {}
    lab7 = get_lab("lab7")
    v7 = variants.values_for(lab7, SEED)
    out["lab7 intruder"] = [f"system:serviceaccount:{v7['ns']}:{v7['sa']}", v7["attacker"]]
    out["lab7 read secrets"] = [v7["read_secrets"], v7["read_secrets_lines"]]
    lab8 = get_lab("lab8")
    v8 = variants.values_for(lab8, SEED)
    out["lab8 q6 intruder"] = [f"system:serviceaccount:{v8['inc_ns']}:{v8['inc_sa']}"]
    lab4 = get_lab("lab4")
    v4 = variants.values_for(lab4, SEED)
    task = next(t for t in lab4.tasks if t.check == "falco.offenders_scaled")
    params = variants.render(task.params, v4)
    offenders = sorted(
        offenders_from(pristine(lab4, SEED), params["namespace"], "controlplane", params["alerts_path"])
    )
    assert offenders
    out["lab4 offenders"] = [",".join(offenders), "\n".join(offenders)]
    lab6 = get_lab("lab6")
    start6 = pristine(lab6, SEED)
    bad = sorted(podsec.identity(p)[2] for p in start6.objects("Pod") if podsec.is_elevated(p))
    assert bad
    out["lab6 offenders"] = [",".join(bad), "\n".join(bad)]
    return out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from click.testing import CliRunner

    from grader.cli import cks

    tmp = tmp_path_factory.mktemp("course")
    roster = tmp / "roster.csv"
    roster.write_text(f"learner,seed\n{LEARNER},{SEED}\n")
    r = CliRunner().invoke(
        cks,
        [
            "dist",
            "--labs",
            ",".join(LABS),
            "--out",
            str(tmp / "dist"),
            "--roster",
            str(roster),
            "--no-wheel",
            "--source",
            str(REPO),
        ],
    )
    assert r.exit_code == 0, r.output
    stage = tmp / "dist" / LEARNER / "cks-kit"
    return {"stage": stage, "venv": make_venv(tmp, stage), "answers": _full_kit_answers(), "tmp": tmp}


def _py(bundle, code: str, cwd: Path) -> str:
    venv: Path = bundle["venv"]
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-P", "-c", code],
        cwd=cwd,
        env=venv_env(venv),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _hidden(bundle) -> list[str]:
    return [v for vals in bundle["answers"].values() for v in vals if v]


def test_the_bundle_holds_no_answer_outside_the_starting_state(bundle) -> None:
    stage: Path = bundle["stage"]
    assert not (stage / "grader" / "labgen" / "lab7.py").exists()  # the generator (and its derive) stays home
    assert not any("solution" in p.as_posix().lower() for p in stage.rglob("*"))
    digests = json.loads((stage / "grader" / "_answers.json").read_text())
    for lab, table in digests["labs"].items():
        for name, values in table.items():
            assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values), (lab, name)
    assert {"lab4", "lab6", "lab7", "lab8"} <= set(digests["labs"])
    for p in stage.rglob("*"):
        rel = p.relative_to(stage).as_posix()
        if not p.is_file() or re.match(r"labs/[^/]+/start/", rel):
            continue  # the start is the evidence the learner investigates
        text = p.read_text(encoding="utf-8", errors="replace")
        for value in _hidden(bundle):
            assert value not in text, (rel, value)
    # one by one too, in the lab folders (the grader's own code uses words like "reporter" or "catalog")
    names = {
        n
        for key in ("lab4 offenders", "lab6 offenders", "lab7 read secrets")
        for n in bundle["answers"][key][1].split("\n")
    }
    names |= {
        bundle["answers"]["lab7 intruder"][0].rsplit(":", 1)[1],
        bundle["answers"]["lab8 q6 intruder"][0].rsplit(":", 1)[1],
    }
    for p in (stage / "labs").rglob("*"):
        rel = p.relative_to(stage).as_posix()
        if p.is_file() and not re.match(r"labs/[^/]+/start/", rel):
            text = p.read_text(encoding="utf-8", errors="replace")
            assert not [n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)], rel
    lab7 = (stage / "labs").glob("lab7-*/lab.yaml")
    assert "(hidden: find it)" in next(lab7).read_text()


PROBE = r"""
import importlib, inspect, json, pkgutil, sys
import grader
from grader import variants
from grader.labs import all_labs
from grader.workspace import pristine
out = []
mods = sorted(m.name for m in pkgutil.walk_packages(grader.__path__, "grader."))
out.append("modules:" + ",".join(mods))
for lab in all_labs():
    seed = variants.default_seed()
    out.append(json.dumps(variants.values_for(lab, seed), default=str))
    out.append(json.dumps(variants.pick(lab.id, seed, lab.variables), default=str))
    class Ctx: pass
    ctx = Ctx(); ctx.lab = lab
    a = variants.answers(ctx)
    assert a.digests, lab.id
    names = ("intruder", "intruder_sa", "read_secrets", "offenders", "offending_pods", "offending_Deployment")
    for name in names:
        out.append(repr(a.select(name, None, None)) + repr(a.pick(name, None, None)))
    # every public zero-argument or (lab, seed) function of the answer-facing modules
    for modname in ("grader.variants", "grader.labs", "grader.workspace"):
        mod = importlib.import_module(modname)
        for fname, fn in inspect.getmembers(mod, inspect.isfunction):
            own = fn.__module__ == modname
            if fname.startswith("_") or not own or fname in ("materialize", "start", "reset"):
                continue
            params = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
            names = [p.name for p in params]
            args = {"lab": lab, "seed": seed, "lab_id": lab.id}
            if all(n in args for n in names):
                try:
                    out.append(repr(fn(*[args[n] for n in names])))
                except Exception as exc:
                    out.append(f"{fname}: {type(exc).__name__}")
    out.append(repr(sorted(str(p) for p in pristine(lab, seed).root.rglob("*.json"))))
print("\n".join(out))
"""


def test_no_public_function_produces_an_answer(bundle, tmp_path: Path) -> None:
    out = _py(bundle, PROBE, tmp_path)
    assert "grader.labgen.lab7" not in out and "grader.solutions" not in out
    for what, values in bundle["answers"].items():
        for value in values:
            assert value not in out, (what, value)
    # the lab7 intruder's own account name is not among the values (only the hidden marker is)
    assert "(hidden: find it)" in out


def test_digests_still_grade_start_zero_and_solution_full(bundle, tmp_path: Path) -> None:
    from grader.labs import get_lab
    from grader.solutions import apply_solution

    venv: Path = bundle["venv"]
    env = venv_env(venv)
    for lab_id in LABS:
        ws = tmp_path / lab_id
        proc = subprocess.run(
            [str(venv / "bin" / "cks"), "start", lab_id, "-w", str(ws)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        meta = (ws / "cks.yaml").read_text()
        assert f"seed: {SEED}" in meta  # the baked seed, nothing typed
        proc = subprocess.run(
            [str(venv / "bin" / "grade"), lab_id, "-w", str(ws), "--format", "json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        start = json.loads(proc.stdout)
        assert start["score"] == 0, (lab_id, start["score"])
        apply_solution(get_lab(lab_id), ws, SEED)  # the instructor's checkout, outside the bundle
        proc = subprocess.run(
            [str(venv / "bin" / "grade"), lab_id, "-w", str(ws), "--format", "json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        solved = json.loads(proc.stdout)
        assert solved["score"] == solved["max_score"] > 0, (
            lab_id,
            [(t["id"], t["status"], t["message"]) for t in solved["tasks"] if t["status"] != "pass"],
        )


def test_course_bundle_readme_version_and_instructor_commands(bundle, tmp_path: Path) -> None:
    stage: Path = bundle["stage"]
    readme = (stage / "README.md").read_text()
    for word in ("regrade", "selftest", "cks solve", "cks dist", "pytest", "lab1", "lab3"):
        assert word not in readme, word
    assert all(lab in readme for lab in LABS) and LEARNER in readme
    version = re.search(r'^version = "([^"]+)"', (stage / "pyproject.toml").read_text(), re.M).group(1)
    assert re.fullmatch(r"\d+\.\d+\.\d+\.post\d{14}", version)
    venv: Path = bundle["venv"]
    env = venv_env(venv)
    for args in (["solve", "lab7"], ["selftest", "lab7"]):
        proc = subprocess.run(
            [str(venv / "bin" / "cks"), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    out = _py(
        bundle, "from grader.instructor.submit import default_learner; print(default_learner())", tmp_path
    )
    assert out.strip() == LEARNER
