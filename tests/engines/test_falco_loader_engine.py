"""The Falco rules loader, engine and outputs: behaviour a learner or an instructor would notice."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.engines.falco.events import event_from_mapping
from grader.engines.falco.loader import RulesLoader, default_rules_text, load_rules
from grader.engines.falco.outputs import OutputFormat, OutputFormatError
from grader.engines.falco.validation import validation_json, validation_text

LOCAL = "/etc/falco/falco_rules.local.yaml"


def with_default(text: str):
    return load_rules([("/etc/falco/falco_rules.yaml", default_rules_text()), (LOCAL, text)])


def rule(
    name: str, condition: str, priority: str = "WARNING", output: str = "x %proc.name", extra: str = ""
) -> str:
    return (
        f'- rule: {name}\n  desc: d\n  condition: {condition}\n  output: "{output}"\n'
        f"  priority: {priority}\n{extra}"
    )


def ev(**fields):
    return event_from_mapping({k.replace("__", "."): v for k, v in fields.items()})


SHADOW_READ = dict(
    evt__type="openat",
    fd__name="/etc/shadow",
    evt__arg__flags="O_RDONLY",
    proc__name="cat",
    proc__args=["/etc/shadow"],
    container__id="3ad7b26ded6d",
    container__name="web",
    user__name="root",
)


# ---- the default rules file ------------------------------------------------------------------------


def test_default_rules_load_cleanly_and_define_the_standard_macros() -> None:
    res = load_rules([("falco_rules.yaml", default_rules_text())])
    assert res.successful
    assert not res.warnings, [w.short() for w in res.warnings]
    for name in (
        "spawned_process",
        "container",
        "open_read",
        "open_write",
        "open_file_failed",
        "never_true",
        "proc_name_exists",
        "interactive",
        "etc_dir",
        "shell_procs",
        "sensitive_files",
    ):
        assert res.macro(name) is not None, name
    for name in ("shell_binaries", "package_mgmt_binaries", "sensitive_file_names", "userexec_binaries"):
        assert res.list(name) is not None, name
    assert "pip3" in res.list("package_mgmt_binaries").items  # nested lists expanded


def test_default_macros_mean_what_upstream_macros_mean() -> None:
    res = with_default(rule("R", "open_read and container and sensitive_files"))
    r = res.rule("R")
    assert r.evttypes == frozenset({"open", "openat", "openat2"})
    assert r.filter.matches(ev(**SHADOW_READ))
    host = dict(SHADOW_READ)
    del host["container__id"], host["container__name"]
    assert not r.filter.matches(ev(**host))  # container.id is "host" outside containers
    write = dict(SHADOW_READ, evt__arg__flags="O_WRONLY")
    assert not r.filter.matches(ev(**write))


def test_the_lab_copy_of_the_default_file_is_byte_identical(repo) -> None:
    lab_copy = repo / "labs/lab3-falco-rules/start/nodes/controlplane/etc/falco/falco_rules.yaml"
    assert lab_copy.read_bytes() == default_rules_text().encode()


# ---- loading several files --------------------------------------------------------------------------


def test_local_file_overrides_a_default_list_and_macro() -> None:
    local = (
        "- list: shell_binaries\n  items: [fish]\n  override:\n    items: append\n\n"
        "- macro: container\n  condition: (container.id != host and container.name != pause)\n"
        "  override:\n    condition: replace\n"
    )
    res = with_default(local)
    assert res.successful
    assert res.list("shell_binaries").items[-1] == "fish"
    term = res.rule("Terminal shell in container")
    assert "fish" in term.condition_compiled and "container.name != pause" in term.condition_compiled


def test_errors_belong_to_the_file_that_causes_them() -> None:
    res = with_default(rule("Broken", "spawned_process and nosuch_macro"))
    assert res.files[0].successful
    assert not res.files[1].successful
    err = res.files[1].errors[0]
    assert (err.code, err.message) == ("LOAD_ERR_VALIDATE", "Undefined macro 'nosuch_macro' used in filter.")
    assert err.item_name == "Broken" and err.context.filename == LOCAL


def test_first_error_stops_the_file_and_later_files_still_load() -> None:
    loader = RulesLoader()
    first = loader.load(
        "a.yaml", "- list: l\n  items: [a]\n- macro: m\n- rule: never_read\n  enabled: true\n"
    )
    assert [e.message for e in first.errors] == ["Item has no mapping for key 'condition'"]
    second = loader.load("b.yaml", rule("R", "evt.type = execve and proc.name in (l)"))
    assert second.successful  # the list from the first file was collected before its error
    assert loader.result().rule("R").condition_compiled == "(evt.type = execve and proc.name in (a))"


def test_positions_are_falco_style_zero_based() -> None:
    text = "- rule: R\n  desc: d\n  condition: evt.type = open and\n  output: o\n  priority: INFO\n"
    res = load_rules([("r.yaml", text)])
    err = res.errors[0]
    locs = err.context.locations
    assert [(loc.item_type, loc.line, loc.column) for loc in locs[:2]] == [
        ("rules content", 0, 0),
        ("rule", 0, 2),
    ]
    assert locs[-1].item_type == "condition expression"
    assert (err.line, err.column) == (3, 14)  # 1-based for humans: the condition starts on line 3


# ---- bad input: a clear Falco-coded error, quickly -------------------------------------------------


def _fast(fn, limit: float = 2.0):
    t = time.perf_counter()
    out = fn()
    assert time.perf_counter() - t < limit
    return out


def test_recursive_macros_are_a_reference_loop() -> None:
    # a (redefined after b) -> b -> a -> b: resolving a meets b a second time, as Falco reports
    text = (
        "- macro: a\n  condition: evt.type = open\n- macro: b\n  condition: a\n"
        "- macro: a\n  condition: b\n" + rule("R", "a")
    )
    res = _fast(lambda: load_rules([("r.yaml", text)]))
    assert [(e.code, e.message) for e in res.errors] == [("LOAD_ERR_VALIDATE", "reference loop in macro 'b'")]


def test_a_macro_cannot_use_a_later_macro() -> None:
    text = "- macro: a\n  condition: b\n- macro: b\n  condition: evt.type = open\n" + rule("R", "a")
    res = load_rules([("r.yaml", text)])
    assert res.errors[0].message == "Undefined macro 'b' used in filter."
    assert res.errors[0].item_name == "a"


def test_a_list_that_includes_itself_does_not_hang() -> None:
    text = "- list: l\n  items: [x]\n- list: l\n  items: [l, y]\n" + rule(
        "R", "evt.type = execve and proc.name in (l)"
    )
    res = _fast(lambda: load_rules([("r.yaml", text)]))
    assert res.successful
    assert res.list("l").items == ["l", "y", "y"]  # one level of expansion, as Falco does


def test_huge_rules_file_is_refused_quickly() -> None:
    text = "# padding\n" * 1_100_000
    res = _fast(lambda: load_rules([("big.yaml", text)]))
    assert res.errors[0].code == "LOAD_ERR_FILE_READ" and "MB" in res.errors[0].message


def test_yaml_bomb_is_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    res = _fast(lambda: load_rules([("bomb.yaml", bomb)]))
    assert res.errors[0].code == "LOAD_ERR_YAML_PARSE" and "bomb" in res.errors[0].message


def test_non_utf8_and_binary_files_are_refused() -> None:
    res = load_rules([("latin1.yaml", b"- rule: caf\xe9\n"), ("bin.yaml", b"\x00\x01\x02")])
    assert [e.code for e in res.errors] == ["LOAD_ERR_YAML_PARSE", "LOAD_ERR_YAML_PARSE"]
    assert "not UTF-8" in res.errors[0].message and "binary" in res.errors[1].message


def test_deeply_nested_condition_is_a_compile_error_quickly() -> None:
    cond = "(" * 100_000 + "evt.type = open" + ")" * 100_000
    res = _fast(lambda: load_rules([("deep.yaml", rule("R", f"'{cond}'"))]))
    assert res.errors[0].code == "LOAD_ERR_COMPILE_CONDITION"


def test_pathological_regex_runs_in_linear_time() -> None:
    res = load_rules([("re.yaml", rule("R", "evt.type = execve and proc.cmdline regex '(a+)+$'"))])
    assert res.successful, [e.short() for e in res.errors]
    evil = ev(evt__type="execve", proc__name="x", proc__args=["a" * 50_000 + "!"])
    assert _fast(lambda: res.rule("R").filter.matches(evil)) is False


def test_yaml_syntax_error_reads_like_falco() -> None:
    res = load_rules([("bad.yaml", "this : is : not : yaml")])
    assert res.errors[0].message == "yaml-cpp: error at line 1, column 11: illegal map value"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=12),
            st.sampled_from(["rule", "macro", "list", "condition", "evt.type = open", "spawned_process"]),
        ),
        lambda kids: st.one_of(
            st.lists(kids, max_size=4),
            st.dictionaries(
                st.sampled_from(
                    [
                        "rule",
                        "macro",
                        "list",
                        "items",
                        "condition",
                        "output",
                        "desc",
                        "priority",
                        "append",
                        "override",
                        "exceptions",
                        "enabled",
                        "tags",
                        "source",
                        "fields",
                        "values",
                        "name",
                    ]
                ),
                kids,
                max_size=5,
            ),
        ),
        max_leaves=20,
    )
)
def test_any_yaml_shape_gives_results_not_exceptions(doc) -> None:
    text = json.dumps(doc)  # JSON is YAML
    res = load_rules([("fuzz.yaml", text)])
    for p in res.errors + res.warnings:
        assert p.code.startswith("LOAD_") and isinstance(p.message, str)
    validation_text(res.files)
    validation_json(res.files)


# ---- running rules ----------------------------------------------------------------------------------


def _two_rules():
    return load_rules(
        [
            (
                "r.yaml",
                rule("First", "evt.type = openat and fd.name = /etc/shadow", "NOTICE")
                + rule("Second", "evt.type in (openat, execve) and proc.name = cat", "CRITICAL")
                + rule("Disabled", "evt.type = openat", "ALERT", extra="  enabled: false\n"),
            )
        ]
    )


def test_rule_matching_first_emits_only_the_first_rule_in_load_order() -> None:
    res = _two_rules()
    event = ev(**SHADOW_READ)
    assert [a.rule for a in res.engine().process(event)] == ["First"]
    assert [a.rule for a in res.engine(rule_matching="all").process(event)] == ["First", "Second"]


def test_priority_threshold_and_disabled_rules() -> None:
    res = _two_rules()
    assert [a.rule for a in res.engine(priority="error", rule_matching="all").process(ev(**SHADOW_READ))] == [
        "Second"
    ]
    assert "Disabled" not in [r.name for r in res.engine().rules]


def test_event_type_index_only_offers_rules_that_can_match() -> None:
    eng = _two_rules().engine(rule_matching="all")
    assert [r.name for r in eng.candidates("execve")] == ["Second"]
    assert [r.name for r in eng.candidates("connect")] == []


def test_priorities_are_case_insensitive_and_info_is_informational() -> None:
    res = load_rules(
        [("p.yaml", rule("A", "evt.type = open", "info") + rule("B", "evt.type = open", "Critical"))]
    )
    assert [r.priority_name for r in res.rules] == ["Informational", "Critical"]
    bad = load_rules([("p.yaml", rule("A", "evt.type = open", "urgent"))])
    assert bad.errors[0].message == "Invalid priority"


# ---- outputs ----------------------------------------------------------------------------------------


def test_alert_line_has_time_priority_and_substituted_fields() -> None:
    res = load_rules(
        [
            (
                "o.yaml",
                rule(
                    "R",
                    "evt.type = openat",
                    "WARNING",
                    "%evt.time,%container.id,%container.name,%user.name,%proc.cmdline %proc.pname",
                ),
            )
        ]
    )
    event = ev(**SHADOW_READ, evt__rawtime=1470327477881781397)
    alert = res.engine().process(event)[0]
    assert alert.line() == (
        "16:17:57.881781397: Warning 16:17:57.881781397,3ad7b26ded6d,web,root,cat /etc/shadow <NA>"
    )
    assert alert.line(iso=True).startswith("2016-08-04T16:17:57.881781397+0000: Warning ")
    doc = alert.to_dict()
    assert doc["rule"] == "R" and doc["priority"] == "Warning" and doc["source"] == "syscall"
    assert doc["time"] == "2016-08-04T16:17:57.881781397Z"
    assert (
        doc["output_fields"]["proc.pname"] is None and doc["output_fields"]["container.id"] == "3ad7b26ded6d"
    )


def test_output_token_forms() -> None:
    fmt = OutputFormat.parse("[%5proc.name] p=%proc.aname[1] u=%toupper(user.name)")
    assert fmt.fields == ["proc.name", "proc.aname[1]", "toupper(user.name)"]
    event = ev(
        evt__type="execve",
        proc__name="catalina",
        user__name="root",
        proc__ancestors=[{"name": "bash"}, {"name": "sshd"}],
    )
    assert fmt.render(event) == "[catal] p=bash u=ROOT"
    assert OutputFormat.parse("%3proc.name|").render(ev(evt__type="execve", proc__name="ls")) == "ls |"
    with pytest.raises(OutputFormatError, match="invalid formatting token not_a_field rest"):
        OutputFormat.parse("x %not_a_field rest")
    with pytest.raises(OutputFormatError, match="cannot end with a %"):
        OutputFormat.parse("100%")


def test_unknown_output_field_is_load_err_compile_output() -> None:
    res = load_rules([("o.yaml", rule("R", "evt.type = open", output="seen %proc.nobody"))])
    assert (res.errors[0].code, res.errors[0].message) == (
        "LOAD_ERR_COMPILE_OUTPUT",
        "invalid formatting token proc.nobody",
    )


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=["L", "x", " ", "\t", ",", "(", ")", "=", "a"], max_size=14),
    st.sampled_from([[], ["a"], ["a", "b c"], [""]]),
)
def test_list_substitution_matches_falcos_algorithm(condition: str, items: list[str]) -> None:
    """The linear list substitution gives what Falco's quadratic one gives, blanks and commas included."""
    from grader.engines.falco.rule_loader_compiler import _resolve_list_falco, resolve_list

    assert resolve_list(condition, "L", items) == _resolve_list_falco(condition, "L", items)
