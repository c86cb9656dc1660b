"""lab7's log is assembled from pre-serialised pieces for speed (a class regrade rebuilds it per learner):
every line must still be exactly the compact JSON of its event, with times and ids as the standard library
makes them."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import timedelta

import orjson
import pytest

from grader.labgen import lab7
from grader.labs import get_lab
from grader.variants import values_for

LAB = get_lab("lab7")


@pytest.fixture(scope="module")
def events() -> list[tuple[int, bytes]]:
    p = lab7.plan("format", values_for(LAB, "format"))
    return [(at, b"".join(pieces)) for at, pieces in lab7.build_log(p)]


def test_every_line_is_the_compact_json_of_its_event(events):
    for _, line in events:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        event = orjson.loads(line)
        assert (
            orjson.dumps(event) + b"\n" == line
        )  # valid JSON, no stray spaces, keys as an encoder writes them
        assert list(event)[:5] == ["kind", "apiVersion", "level", "auditID", "stage"]


def test_line_times_and_ids_agree_with_the_event(events):
    p = lab7.plan("format", values_for(LAB, "format"))
    by_request: dict[str, list[dict]] = {}
    for at, line in events:
        event = orjson.loads(line)
        stamp = (p.base + timedelta(microseconds=at)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert event["stageTimestamp"] == stamp  # the sort key is the time written in the line
        by_request.setdefault(event["auditID"], []).append(event)
    for stages in by_request.values():
        assert len({e["requestReceivedTimestamp"] for e in stages}) == 1
        assert (
            len(
                {
                    orjson.dumps(
                        {
                            k: v
                            for k, v in e.items()
                            if k not in ("stage", "stageTimestamp", "responseStatus", "annotations")
                        }
                    )
                    for e in stages
                }
            )
            == 1
        )  # the stage lines of one request share everything else
        first = stages[0]
        if first["stage"] == "RequestReceived":
            assert first["stageTimestamp"] == first["requestReceivedTimestamp"]
            assert "responseStatus" not in first and "annotations" not in first
    shapes = Counter(tuple(e["stage"] for e in stages) for stages in by_request.values())
    assert set(shapes) == {
        ("RequestReceived", "ResponseComplete"),
        ("RequestReceived", "ResponseStarted", "ResponseComplete"),
        ("ResponseStarted",),
    }


def test_offsets_round_like_timedelta():
    rng = random.Random(7)
    values = [rng.uniform(0, 20000) for _ in range(20000)]
    values += [m / 128 for m in range(0, 20000, 3)]  # exact half microseconds: ties go to the even one
    values += [0.0, 1e-7, 4.9999995e-7, 5e-7, 1.5e-6, 2.5e-6, 8999.9999995]
    for x in values:
        assert lab7._offset_us(x) == timedelta(seconds=x) // timedelta(microseconds=1), x


def test_request_ids_are_version_4_uuids():
    rng = random.Random(3)
    for bits in [0, (1 << 128) - 1] + [rng.getrandbits(128) for _ in range(2000)]:
        assert lab7._uuid4(bits) == str(uuid.UUID(int=bits, version=4))
