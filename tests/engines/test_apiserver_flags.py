"""kube-apiserver's command line, read as pflag/cobra/component-base read it."""

from __future__ import annotations

import pytest

from grader.engines.apiserver import AUDIT_FLAGS, go_parse_int, parse_argv, suggest


def words(*argv: str) -> list[tuple[str, str]]:
    return [(f"command[{i}]", w) for i, w in enumerate(argv)]


def test_equals_and_separate_forms_and_last_wins():
    p = parse_argv(
        words(
            "kube-apiserver",
            "--audit-log-maxage=7",
            "--audit-log-path",
            "/var/log/a.log",
            "--audit-log-maxage",
            "30",
        )
    )
    assert p.last("audit-log-path").value == "/var/log/a.log"
    assert p.last("audit-log-maxage").value == "30"
    assert [s.value for s in p.all("audit-log-maxage")] == ["7", "30"]
    assert not p.problems


def test_separate_form_takes_next_word_even_if_it_looks_like_a_flag():
    # pflag gives a non-boolean flag the next word whatever it is: the path becomes "--audit-log-maxage=30"
    p = parse_argv(words("kube-apiserver", "--audit-log-path", "--audit-log-maxage=30"))
    assert p.last("audit-log-path").value == "--audit-log-maxage=30"
    assert p.last("audit-log-maxage") is None


def test_bool_flags_take_no_value_word():
    p = parse_argv(
        words("kube-apiserver", "--audit-log-compress", "--allow-privileged", "--secure-port", "6443")
    )
    assert p.last("audit-log-compress").value == "true"
    assert p.last("allow-privileged").value == "true"
    assert p.last("secure-port").value == "6443"


def test_underscores_are_read_as_dashes():
    p = parse_argv(words("kube-apiserver", "--audit_log_maxage=30"))
    assert p.last("audit-log-maxage").value == "30"
    assert any(x.code == "flag-underscores" for x in p.problems)


@pytest.mark.parametrize(
    "word, code",
    [
        ("--audit-log-maxage 30", "flag-and-value-in-one-word"),
        ("-audit-log-path=/x", "single-dash-flag"),
        ("audit-log-path=/x", "positional-argument"),
        ("---audit-log-path=/x", "bad-flag-syntax"),
    ],
)
def test_mistakes_that_stop_kube_apiserver(word, code):
    p = parse_argv(words("kube-apiserver", word))
    assert [x.code for x in p.problems] == [code]
    assert p.problems[0].blocking


def test_value_missing_at_the_end():
    p = parse_argv(words("kube-apiserver", "--audit-log-path"))
    assert [x.code for x in p.problems] == ["flag-needs-value"]


def test_double_dash_ends_flags_and_klog_v_shorthand():
    p = parse_argv(words("kube-apiserver", "-v=2", "--", "--audit-log-path=/x"))
    assert p.last("v").value == "2"
    assert p.last("audit-log-path") is None
    assert [x.code for x in p.problems] == ["positional-argument"]


@pytest.mark.parametrize(
    "text, value",
    [
        ("30", 30),
        ("0", 0),
        ("-5", -5),
        ("+7", 7),
        ("030", 24),
        ("0x1e", 30),
        ("0o36", 30),
        ("0b11110", 30),
        ("1_000", 1000),
        ("0x_1e", 30),
    ],
)
def test_go_parse_int_base_zero(text, value):
    assert go_parse_int(text) == value


@pytest.mark.parametrize(
    "text", ["", "30d", "3.0", " 30", "08", "1__0", "_1", "1_", "0x", "thirty", "9" * 30]
)
def test_go_parse_int_rejects(text):
    with pytest.raises(ValueError, match="strconv.ParseInt"):
        go_parse_int(text)


@pytest.mark.parametrize(
    "wrong, right",
    [
        ("audit-log-max-backups", "audit-log-maxbackup"),
        ("audit-log-max-age", "audit-log-maxage"),
        ("audit-log-maxsizes", "audit-log-maxsize"),
        ("audit-policy", "audit-policy-file"),
        ("audit-log-file", "audit-log-path"),
        ("audit-log-maxbakup", "audit-log-maxbackup"),
        ("audit_log_max_size", "audit-log-maxsize"),
    ],
)
def test_did_you_mean(wrong, right):
    assert suggest(wrong) == right


def test_flag_table_matches_the_reference():
    # audit-semantics §6 and pkg/server/options/audit.go: the policy flag, 17 log flags, 14 webhook flags.
    log = {
        "path",
        "maxage",
        "maxbackup",
        "maxsize",
        "compress",
        "format",
        "mode",
        "version",
        "batch-buffer-size",
        "batch-max-size",
        "batch-max-wait",
        "batch-throttle-enable",
        "batch-throttle-qps",
        "batch-throttle-burst",
        "truncate-enabled",
        "truncate-max-batch-size",
        "truncate-max-event-size",
    }
    webhook = {
        "config-file",
        "initial-backoff",
        "batch-initial-backoff",
        "mode",
        "version",
        "batch-buffer-size",
        "batch-max-size",
        "batch-max-wait",
        "batch-throttle-enable",
        "batch-throttle-qps",
        "batch-throttle-burst",
        "truncate-enabled",
        "truncate-max-batch-size",
        "truncate-max-event-size",
    }
    expected = (
        {"audit-policy-file"} | {f"audit-log-{x}" for x in log} | {f"audit-webhook-{x}" for x in webhook}
    )
    assert set(AUDIT_FLAGS) == expected
    assert AUDIT_FLAGS["audit-log-maxage"].unit == "days"
    assert AUDIT_FLAGS["audit-log-maxbackup"].default_136 == 100
    assert AUDIT_FLAGS["audit-log-mode"].default == "blocking"
    assert AUDIT_FLAGS["audit-webhook-mode"].default == "batch"
    assert AUDIT_FLAGS["audit-log-format"].choices == ("json", "legacy")
    assert AUDIT_FLAGS["audit-webhook-batch-initial-backoff"].deprecated
