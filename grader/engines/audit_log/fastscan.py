"""The C speed-ups of the audit log fast path (``_fastscan.c``), or their absence.

``native`` is the compiled module when the install built it (``hatch_build.py``: a C compiler and Python's
headers were there) and it was built for this contract (``ABI``), else None; the callers then use their
Python versions (:mod:`.proof` with msgspec, ``scan._needle_lines``), which give the same results slower.
It offers:

* ``heads(block, n, users, starts=False)``: proves each of the ``n`` lines of ``block`` to be an audit
  event the full decoder reads alike (see :mod:`.proof`) and reads its auditID, stage, effective user name
  and whether it is a failed login, or refuses the block (None). It refuses more than msgspec does
  (anything it cannot read exactly: an escaped key where keys are matched, an escaped auditID, stage or user
  name, a user name that is not a string, a number of over 100 characters, nesting past 200 levels), never
  less. ``n < 0``: any number of lines; ``starts``: also where each line starts (``n + 1`` offsets, as
  bytes);
* ``plain_json(data)``: whether ``data`` is one JSON value that Python's json reads as orjson does (strict
  JSON as above, no run of 16 digits): such a line may be read without importing orjson (~15 ms);
* ``needle_lines(block, first, needles, prefix, groups=())``: the lines holding any needle and a member of
  every group, numbered, and the count of lines, or None unless every line starts with ``prefix`` and ends
  with ``}``.

``CKS_AUDIT_NATIVE=0`` in the environment leaves the module unused (to compare the two, or to rule it out).
"""

from __future__ import annotations

import os

ABI = 6  # the contract _fastscan.c implements (its FASTSCAN_ABI)


def _load() -> object | None:
    if os.environ.get("CKS_AUDIT_NATIVE", "1") == "0":
        return None
    import importlib  # loaded with the interpreter already

    try:  # the compiled module is this module's own implementation: only it imports it
        _fastscan = importlib.import_module("grader.engines.audit_log._fastscan")
    except ImportError:
        return None
    return _fastscan if getattr(_fastscan, "ABI", None) == ABI else None


native: object | None = _load()
