"""Checks for audit-log forensics (lab7): who read which Secrets, were exactly those rotated, and can the
intruder still read Secrets while keeping its other permissions.

The expected answer is never taken from solutions/ nor from the learner's files: it is recomputed from the
pristine starting state (``ctx.start``: the seeded audit log and the Secrets with their creation times) with
the audit log engine. What counts as a read (the lab README says the same):

* a ``get``, ``list`` or ``watch`` of ``secrets`` in the namespace by the identity, counted once per request,
  that succeeded (2xx); a 403 or 404 read nothing;
* a request that names a Secret (``get``, or a ``list``/``watch`` with ``fieldSelector=metadata.name=X``)
  reads that Secret; one that names none reads every Secret of the namespace that existed then (its
  ``creationTimestamp`` is at or before the request's ``requestReceivedTimestamp``).
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from typing import Any

from grader import variants
from grader.checks import CheckContext, check
from grader.checks.identity import start_uid
from grader.engines import rbac
from grader.engines.audit_log import Query, ReadStats, order_log_names, read_events, time_key
from grader.results import Evidence, Outcome, Status
from grader.snapshot import FileProblem, Snapshot
from grader.text import plural

NODE = "controlplane"
LOG_DIR = "/var/log/kubernetes/audit-lab7"  # lab7's seeded log (lab8 passes its own log_dir)
IDENTITY_FILE = "/opt/course/lab7/intruder.txt"
SECRETS_FILE = "/opt/course/lab7/secrets.txt"
READ = ("get", "list", "watch")
# keys naming an identity, not holding a secret: a rotation may keep them (see rotation_problem)
IDENTIFIER_KEY = re.compile(
    r"^(user(name)?|login|email|bind-?dn|client-?id|access-?key-?id|account(-?id)?)$", re.I
)


# ---- the expected answer, from the pristine start ----------------------------------------------------------


def secrets_read(
    snap: Snapshot, node: str, log_dir: str, namespace: str, user: str
) -> tuple[set[str], ReadStats]:
    """Names of the Secrets ``user`` read in ``namespace``, per the log and the Secrets in ``snap``."""
    return _secrets_read_cached(str(snap.root), node, log_dir, namespace, user)


@lru_cache(maxsize=16)
def _secrets_read_cached(
    root: str, node: str, log_dir: str, namespace: str, user: str
) -> tuple[set[str], ReadStats]:
    snap = Snapshot(root)
    created = {}
    for obj in snap.objects("Secret", namespace):
        meta = obj["metadata"]
        ts = meta.get("creationTimestamp")
        created[str(meta.get("name"))] = time_key(ts) if isinstance(ts, str) else ""
    names = [f"{log_dir.rstrip('/')}/{n}" for n in snap.list_dir(node, log_dir)]
    stats = ReadStats()
    streams = []
    try:
        series = []
        for group in order_log_names(names):
            s = []
            for path in group:
                fh = snap.open_node_file(node, path)
                streams.append(fh)
                s.append((path, fh))
            series.append(s)
        query = Query(
            users=(user,), resources=("secrets",), namespaces=(namespace,), verbs=READ, codes=("2xx",)
        )
        read: set[str] = set()
        for entry in read_events(series, stats, query):
            ev = entry.event
            name = (ev.get("objectRef") or {}).get("name")
            if name:
                read.add(str(name))
                continue
            at = time_key(str(ev.get("requestReceivedTimestamp") or ""))
            read.update(n for n, c in created.items() if c and c <= at)
    finally:
        for fh in streams:
            fh.close()
    return read, stats


def _expected(ctx: CheckContext, namespace: str, serviceaccount: str, node: str, log_dir: str) -> set[str]:
    user = f"system:serviceaccount:{namespace}:{serviceaccount}"
    return variants.answers(ctx).select(  # digests in a course bundle (grader/variants.py)
        "read_secrets",
        variants.object_names(ctx.start, "Secret", namespace),
        lambda: secrets_read(ctx.start, node, log_dir, namespace, user)[0],
    )


# ---- answer files ------------------------------------------------------------------------------------------


def _answer_lines(ctx: CheckContext, node: str, path: str) -> tuple[list[str] | None, Outcome | None]:
    """The answer file's items, one per line (comments, blank lines and quotes ignored), or why not.

    "One per line" is the format the README asks for: a line holding several items (``a, b`` or ``a b``)
    fails, naming only the learner's own line, so no answer is read into a format the task rules out."""
    where = f"{node}:{path}"
    try:
        text = ctx.snap.read_text(node, path, max_bytes=1024 * 1024)
    except FileProblem as exc:
        make = Outcome.error if exc.is_environment_problem else Outcome.failed
        return None, make(
            str(exc), Evidence(where, "your answer, one item per line", exc.kind.replace("_", " "))
        )
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip().strip("\"'").strip()
        if not line:
            continue
        if re.search(r"[\s,;]", line):
            shown = line if len(line) <= 80 else line[:77] + "..."
            return None, Outcome.failed(
                f"{where} line {number} holds several items ({shown!r}): write one per line",
                Evidence(f"{where} line {number}", "one item per line", shown),
            )
        items.append(line)
    return items, None


@check("audit_log.identity_named")
def identity_named(
    ctx: CheckContext, namespace: str, serviceaccount: str, node: str = NODE, path: str = IDENTITY_FILE
) -> Outcome:
    """The answer file names the intruding ServiceAccount: ``system:serviceaccount:<ns>:<name>`` (or
    ``<ns>/<name>``), and nothing else."""
    items, problem = _answer_lines(ctx, node, path)
    if problem:
        return problem
    want = f"system:serviceaccount:{namespace}:{serviceaccount}"
    where = f"{node}:{path}"
    if not items:
        return Outcome.failed(f"{where} is empty", Evidence(where, "the intruder's username", "empty"))
    if len(items) > 1:
        return Outcome.failed(
            f"{where} names {len(items)} identities; name exactly one",
            Evidence(where, "one username", ", ".join(items[:5])),
        )
    got = items[0]
    full = (
        f"system:serviceaccount:{got.replace('/', ':', 1)}" if got.count("/") == 1 and ":" not in got else got
    )
    if variants.answers(ctx).matches("intruder", full, want):  # digests in a course bundle
        return Outcome.passed(f"{where} names {full}", Evidence(where, full, got))
    return Outcome.failed(
        f"{where} names {got!r}, which is not the identity that read the Secrets",
        Evidence(where, "the ServiceAccount that read the Secrets (exact name)", got),
    )


@check("audit_log.secrets_listed")
def secrets_listed(
    ctx: CheckContext,
    namespace: str,
    serviceaccount: str,
    node: str = NODE,
    log_dir: str = LOG_DIR,
    path: str = SECRETS_FILE,
) -> Outcome:
    """The answer file lists exactly the Secrets the intruder read (names; ``<ns>/<name>`` accepted)."""
    expected = _expected(ctx, namespace, serviceaccount, node, log_dir)
    if not expected:
        return Outcome.error("the starting state shows no Secret read by the intruder: the lab is broken")
    items, problem = _answer_lines(ctx, node, path)
    if problem:
        return problem
    where = f"{node}:{path}"
    if not items:
        return Outcome.failed(
            f"{where} lists no Secret yet", Evidence(where, "one Secret name per line", "empty")
        )
    got = set()
    for item in items:
        for prefix in (f"{namespace}/", "secret/", "secrets/", "secret.", f"{namespace}:"):
            if item.startswith(prefix):
                item = item[len(prefix) :]
        got.add(item)
    if got == expected:
        return Outcome.passed(
            f"{where} lists the {len(expected)} Secrets that were read",
            Evidence(where, "the Secrets the intruder read", ", ".join(sorted(got))),
        )
    # Neither the number missing nor the number too many is told: either would let a learner find the
    # answer by adding names one at a time and regrading. Names that are no Secret of the namespace at all
    # are safe to point out (they say nothing about what was read).
    known = {str(o["metadata"].get("name")) for o in ctx.start.objects("Secret", namespace)}
    unknown = sorted(got - known)
    if unknown:
        return Outcome.failed(
            f"{where} names {unknown[0]!r}, which is no Secret of {namespace}"
            + (f" (and {len(unknown) - 1} more such names)" if len(unknown) > 1 else ""),
            Evidence(where, f"names of Secrets in {namespace}", ", ".join(unknown[:5])),
        )
    return Outcome.failed(
        f"{where} is not exactly the Secrets the intruder read ({plural(len(got), 'name')} listed): "
        "check every log file (the rotated .gz too), only successful requests, and what a list or watch "
        "without a name read",
        Evidence(where, "exactly the Secrets the intruder read", ", ".join(sorted(got)) or "none"),
    )


# ---- Secrets rotated ---------------------------------------------------------------------------------------


def effective_data(secret: dict[str, Any]) -> dict[str, bytes] | str:
    """What the API server would store: ``data`` (base64) merged with ``stringData`` (wins); or a problem."""
    out: dict[str, bytes] = {}
    data = secret.get("data") or {}
    if not isinstance(data, dict):
        return "data is not a mapping"
    for k, v in data.items():
        try:
            out[str(k)] = base64.b64decode(str(v if v is not None else ""), validate=True)
        except (binascii.Error, ValueError):
            return f"data.{k} is not valid base64 (use stringData for plain text)"
    sdata = secret.get("stringData") or {}
    if not isinstance(sdata, dict):
        return "stringData is not a mapping"
    for k, v in sdata.items():
        out[str(k)] = str(v if v is not None else "").encode()
    return out


def rotation_problem(before: dict[str, bytes], after: dict[str, bytes]) -> str | None:
    """None when every value that could be read before has changed, else what still leaks or broke.

    A leaked value stays leaked wherever it sits: under its old key beside a new one (``password`` next to
    ``password-new``), under a renamed key, or written again through ``stringData`` or another base64
    spelling (the API server stores the decoded bytes, so those compare equal). A key the workload reads
    must keep existing, with a new, non-empty value. Keys that name an identity rather than hold a secret
    (``username``, ``client-id``, ``access-key-id``, ...) may keep their value: rotating a password does not
    rename the account."""
    secret_keys = [k for k in before if not IDENTIFIER_KEY.search(k)]
    old_values = {before[k] for k in secret_keys if before[k]}
    for key, value in sorted(before.items()):
        if key not in after:
            return f"key {key} was removed: keep the keys the workload reads, with new values"
        if value and not after[key]:
            return f"key {key} is empty now: put a new value in it"
        if value and after[key] == value and key in secret_keys:
            return f"key {key} still holds the value that was read"
    moved = sorted(k for k, v in after.items() if v in old_values)
    if moved:
        return f"key {moved[0]} holds a value that was read (under another key before)"
    return None


def _not_in_place(
    ctx: CheckContext, where: str, now: dict[str, Any] | None, want_uid: str | None
) -> tuple[str, Evidence] | None:
    """Why ``now`` is no longer the Secret the lab started with (deleted, recreated, data the API server
    would refuse), as a message and its evidence; None when it is the same Secret, edited in place."""
    if now is None:
        problems = ctx.snap.object_problems
        note = f" (or its file is broken: {problems[0].where}: {problems[0].message})" if problems else ""
        return (f"{where} was deleted{note}", Evidence(where, "the same Secret (same uid)", "absent"))
    got_uid = now["metadata"].get("uid")
    if got_uid is None and want_uid is not None:
        return (
            f"{where} has no metadata.uid any more: a Secret without its uid is a new object (deleted "
            "and recreated); keep the uid and change only the data",
            Evidence(where, f"uid {want_uid}", "no uid"),
        )
    if got_uid != want_uid:
        return (
            f"{where} was deleted and recreated (uid changed); edit it in place",
            Evidence(where, f"uid {want_uid}", f"uid {got_uid}"),
        )
    data = effective_data(now)
    if isinstance(data, str):
        return (f"{where}: {data}", Evidence(where, "valid data", data))
    return None


def _rotation_messages(
    broken: list[tuple[str, Evidence]], stale: list[tuple[str, str]], touched: int, dups: list[str]
) -> list[str]:
    """What is still wrong with the rotation, worst first."""
    msgs = [m for m, _ in broken]
    if stale:
        first, why = stale[0]
        others = f" ({plural(len(stale) - 1, 'more read Secret')} too)" if len(stale) > 1 else ""
        msgs.append(f"{first} is not rotated: {why}{others}; every value that was read must change")
    if touched:
        msgs.append(
            f"{plural(touched, 'Secret')} that {'was' if touched == 1 else 'were'} not read "
            f"{'has' if touched == 1 else 'have'} new data (leave those alone)"
        )
    if dups:
        msgs.append(
            f"note: {', '.join(dups)} {'is' if len(dups) == 1 else 'are'} defined more than once under "
            "cluster/ and only the last definition in file order counts: keep one file per Secret"
        )
    return msgs


@check("audit_log.secrets_rotated")
def secrets_rotated(
    ctx: CheckContext, namespace: str, serviceaccount: str, node: str = NODE, log_dir: str = LOG_DIR
) -> Outcome:
    """Every Secret that was read has new values for all it held, edited in place (same uid); every other
    Secret of the namespace is still there with the same uid and data.

    Meant to ``require`` the listing task: once the learner has named the read Secrets, counts and names
    of read Secrets tell nothing new; before, they would let a learner find them by editing and regrading."""
    expected = _expected(ctx, namespace, serviceaccount, node, log_dir)
    start = {s["metadata"].get("name"): s for s in ctx.start.objects("Secret", namespace)}
    if not expected or not start:
        return Outcome.error("the starting state has no Secrets read by the intruder: the lab is broken")
    # Credit is the share of read Secrets rotated in place; a Secret that should have been left alone costs a
    # share too, so doing nothing earns nothing and changing everything does not earn full marks.
    good, touched = 0, 0
    broken: list[tuple[str, Evidence]] = []
    stale: list[tuple[str, str]] = []  # (Secret, what still leaks)
    dups: list[str] = []  # defined in more than one document: the last in file order counts
    broken_others = 0  # Secrets that were not read but were deleted, recreated or broken
    for name in sorted(start):
        before = start[name]
        where = f"Secret {namespace}/{name}"
        now = ctx.snap.object("Secret", namespace, name)
        if len(ctx.snap.objects("Secret", namespace, name)) > 1:
            dups.append(name)
        want_uid = start_uid(ctx, before)  # on a cluster: the UID `cks start` recorded, not the file's
        not_in_place = _not_in_place(ctx, where, now, want_uid)
        broken_others += name not in expected and (
            now is None or now["metadata"].get("uid") != want_uid or isinstance(effective_data(now), str)
        )
        if not_in_place is not None:
            broken.append(not_in_place)
            continue
        assert now is not None
        data0, data1 = effective_data(before), effective_data(now)
        assert isinstance(data0, dict) and isinstance(data1, dict)
        if name in expected:
            problem = rotation_problem(data0, data1)
            if problem is None:
                good += 1
            else:
                stale.append((where, problem))
        elif data1 != data0:
            touched += 1
    if good == len(expected) and not touched and not broken:
        return Outcome.passed(
            f"exactly the {len(expected)} Secrets that were read have new values (edited in "
            "place); the others are untouched",
            Evidence(f"Secrets in {namespace}", f"{len(expected)} rotated", f"{good} rotated"),
        )
    score = good / (len(expected) + touched + broken_others)
    evidence = (
        [ev for _, ev in broken]
        + [Evidence(where, "every value that was read changed", why) for where, why in stale[:3]]
        + [
            Evidence(
                f"Secrets in {namespace}",
                f"{len(expected)} read Secrets with new values, {len(start) - len(expected)} untouched",
                f"{good} read Secrets with new values, {touched} others changed",
            )
        ]
    )
    return Outcome.failed("; ".join(_rotation_messages(broken, stale, touched, dups)), *evidence, score=score)


# ---- permission removed ------------------------------------------------------------------------------------


def _rbac_objects(snap: Snapshot) -> list[dict[str, Any]]:
    return [
        o for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding") for o in snap.objects(kind)
    ]


def _secret_reads(namespace: str, names: list[str]) -> list[rbac.Request]:
    reqs = [rbac.Request(v, "secrets", namespace, n) for n in names for v in READ]
    reqs += [rbac.Request(v, "secrets", namespace) for v in ("list", "watch")]
    return reqs


def _is_secret_read(req: rbac.Request) -> bool:
    return req.resource == "secrets" and req.api_group == "" and not req.subresource and req.verb in READ


def _names_intruder(ctx: CheckContext, namespace: str, serviceaccount: str, path: str) -> bool:
    return identity_named(ctx, namespace, serviceaccount, path=path).status is Status.PASS


def _permission_changes(
    before: rbac.Authorizer, now: rbac.Authorizer, who: rbac.Identity, namespace: str
) -> tuple[list[tuple[rbac.Request, str]], list[tuple[rbac.Request, str]]]:
    """(permissions lost other than reading Secrets, permissions gained), each with where it was granted,
    probed rule by rule over what ``who`` was granted before and is granted now."""
    lost, gained = [], []
    for where, rule in before.grants(who, namespace):
        for req in rbac.probes_for_rule(rule, namespace):
            if not _is_secret_read(req) and not now.allowed(who, req):
                lost.append((req, where))
    for where, rule in now.grants(who, namespace):
        for req in rbac.probes_for_rule(rule, namespace):
            if not before.allowed(who, req):
                gained.append((req, where))
    return lost, gained


@check("audit_log.read_permission_removed")
def read_permission_removed(
    ctx: CheckContext, namespace: str, serviceaccount: str, identity_file: str = IDENTITY_FILE
) -> Outcome:
    """Judged with RBAC semantics over every Role/ClusterRole/(Cluster)RoleBinding: the ServiceAccount can no
    longer get, list or watch Secrets in the namespace; everything else it could do at the start it still
    can; and it gained nothing new. All or nothing: removing more than the leak (the RoleBinding, the Role,
    the whole rule) breaks the workload, so it earns nothing.

    Messages never name the ServiceAccount, nor the Role or binding that grants the reads (task t1's answer
    and this task's): they name only permissions the learner took away or added, and where."""
    serviceaccount = (
        variants.answers(ctx).pick(  # digests in a course bundle
            "intruder_sa", variants.subject_names(ctx.start, namespace), serviceaccount
        )
        or serviceaccount
    )
    who = rbac.Identity.service_account(namespace, serviceaccount)
    now, before = rbac.Authorizer(_rbac_objects(ctx.snap)), rbac.Authorizer(_rbac_objects(ctx.start))
    names = sorted(
        {str(s["metadata"].get("name")) for s in ctx.start.objects("Secret", namespace)}
        | {str(s["metadata"].get("name")) for s in ctx.snap.objects("Secret", namespace)}
    )
    where_rbac = f"RBAC in {namespace}"
    if any(now.why(who, r) for r in _secret_reads(namespace, names)):
        return Outcome.failed(
            f"the intruder can still read Secrets in {namespace}: find the rule that lets it "
            "(`kubectl auth can-i --list --as ...`) and take away only that",
            Evidence(where_rbac, "no get/list/watch on secrets for the intruder", "still allowed"),
        )
    lost, gained = _permission_changes(before, now, who, namespace)
    problems = ctx.snap.object_problems
    broken = f" (note: {problems[0].where}: {problems[0].message})" if problems else ""
    # the Role or binding that granted a lost permission is often named after the intruder: name it only
    # once the learner has named the intruder (task t1), so this task never gives t1's answer away
    named = _names_intruder(ctx, namespace, serviceaccount, identity_file)
    msgs: list[str] = []
    evidence: list[Evidence] = []
    if lost:
        req, where = lost[0]
        what = _describe(req)
        granted = f" (was granted by {where})" if named else ""
        msgs.append(
            f"the Secrets are safe, but the workload lost permissions it needs, e.g. "
            f"{what}{granted}: remove only the Secrets part{broken}"
        )
        evidence.append(Evidence(where_rbac, "every other permission kept", f"{len(lost)} lost, e.g. {what}"))
    if gained:
        req, where = gained[0]
        what = _describe(req)
        msgs.append(
            f"the intruder gained a permission it did not have: {what}" + (f" ({where})" if named else "")
        )
        evidence.append(Evidence(where_rbac, "no new permissions", f"{len(gained)}, e.g. {what}"))
    if msgs:
        return Outcome.failed("; ".join(msgs), *evidence)
    return Outcome.passed(
        f"the intruder can no longer read Secrets in {namespace} and keeps its other permissions"
    )


def _describe(req: rbac.Request) -> str:
    return f"{req.verb} {req.resource}{'/' + req.subresource if req.subresource else ''}" + (
        f" (API group {req.api_group})" if req.api_group else ""
    )
