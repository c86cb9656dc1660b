"""lab.yaml validation: an instructor's mistake is named with the file, the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.labs import LabError, load_lab_dir, parse_lab

GOOD = {
    "id": "lab9",
    "version": 1,
    "title": "T",
    "minutes": 5,
    "tasks": [
        {
            "id": "t1",
            "title": "x",
            "points": 1,
            "check": "files.present",
            "params": {"node": "cp", "path": "/x"},
            "hint": "h",
        }
    ],
}


def lab(**changes):
    data = {**GOOD, **changes}
    return parse_lab(data, Path("/labs/lab9-x"), "labs/lab9-x/lab.yaml")


def task(**changes):
    return lab(tasks=[{**GOOD["tasks"][0], **changes}])


def test_good_lab_parses():
    parsed = lab()
    assert parsed.id == "lab9" and parsed.max_points == 1 and parsed.tasks[0].params["path"] == "/x"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: lab(id="lab-nine"), ["key 'id'", "lab<N>"]),
        (lambda: lab(colour="red"), ["unknown key 'colour'", "allowed keys"]),
        (lambda: lab(tasks=[]), ["key 'tasks'", "at least one"]),
        (lambda: task(points="two"), ["tasks[0]", "key 'points'", "positive number"]),
        (lambda: task(points=0), ["tasks[0]", "positive number"]),
        (lambda: task(check="nope"), ["key 'check'", "<module>.<name>"]),
        (lambda: task(check="nosuch.thing"), ["no check module 'nosuch'"]),
        (lambda: task(check="files.absent"), ["no check 'files.absent'", "files.present"]),
        (lambda: task(params={"node": "cp"}), ["needs parameter 'path'"]),
        (
            lambda: task(params={"node": "cp", "path": "/x", "size": 3}),
            ["takes no parameter 'size'", "node, path"],
        ),
        (lambda: task(live="yes"), ["key 'live'", "true or false"]),
        (lambda: lab(tasks=[GOOD["tasks"][0], GOOD["tasks"][0]]), ["used twice"]),
        (lambda: parse_lab({**GOOD, "id": "lab8"}, Path("/labs/lab9-x"), "f"), ["does not match the folder"]),
    ],
)
def test_bad_lab_yaml_is_named(make, words):
    with pytest.raises(LabError) as exc:
        make()
    for w in words:
        assert w in str(exc.value)
    assert str(exc.value).startswith(("labs/lab9-x/lab.yaml", "f:"))


def test_broken_yaml_file(tmp_path):
    d = tmp_path / "lab7-x"
    d.mkdir()
    (d / "lab.yaml").write_text("id: lab7\ntasks: [\n")
    with pytest.raises(LabError, match=r"lab.yaml: not valid YAML at line"):
        load_lab_dir(d)


def test_every_shipped_lab_validates():
    from grader.labs import all_labs

    labs = all_labs()
    assert all(lab.tasks for lab in labs)
