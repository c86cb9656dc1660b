"""Behaviour of the Falco condition engine that a rule author notices: what matches, what is refused."""

from __future__ import annotations

import pytest

from grader.engines.falco import (
    MISSING,
    CompileError,
    EventError,
    FieldRef,
    ParseError,
    compile_condition,
    compile_filter,
    event_from_mapping,
    get,
    parse,
    to_text,
)
from grader.engines.falco.ast import And, Check, Identifier, Not, Or

SHADOW_READ = {
    "evt.type": "openat",
    "fd.name": "/etc/shadow",
    "proc.name": "cat",
    "proc.args": ["/etc/shadow"],
    "proc.ancestors": ["bash", "containerd-shim", "systemd"],
    "container.id": "3ad7b26ded6d4a8b",
    "container.name": "web",
    "user.name": "root",
}


def ev(**over):
    data = dict(SHADOW_READ)
    data.update({k.replace("__", "."): v for k, v in over.items()})
    return event_from_mapping(data)


def m(cond: str, event=None) -> bool:
    return compile_condition(cond).matches(event if event is not None else ev())


# ---------------------------------------------------------------- grammar and AST


def test_precedence_not_and_or() -> None:
    node = parse("a or b and not c")
    assert node == Or((Identifier("a"), And((Identifier("b"), Not(Identifier("c"))))))
    assert to_text(node) == "(a or (b and not c))"


def test_compiled_text_matches_falco_form() -> None:
    node = parse("evt.type in (open,openat) and proc.name=cat or proc.cmdline contains 'curl 127.0.0.1'")
    assert to_text(node) == (
        '((evt.type in (open, openat) and proc.name = cat) or proc.cmdline contains "curl 127.0.0.1")'
    )


def test_field_args_and_transformers_in_ast() -> None:
    check = parse("toupper(b64(proc.aname[2])) = X")
    assert check == Check(FieldRef("proc.aname", "2", ("toupper", "b64")), "=", "X")
    assert parse("proc.name = val(proc.pname)").value == FieldRef("proc.pname")


def test_parse_error_carries_message_and_offset() -> None:
    with pytest.raises(ParseError) as err:
        parse("evt.type = execve proc.name = cat")
    assert str(err.value) == "unexpected token after 'execve', expecting 'or', 'and'"
    assert err.value.position == 18


def test_deep_nesting_fails_fast_with_depth_message() -> None:
    with pytest.raises(ParseError, match="exceeded max depth limit of 100"):
        parse("(" * 100_000 + "a" + ")" * 100_000)


# ---------------------------------------------------------------- evaluation semantics


def test_missing_field_makes_every_comparison_false_but_not_negation() -> None:
    host = ev(container__id="host")
    assert not m("k8s.pod.name = x", host)
    assert not m("k8s.pod.name != x", host)
    assert m("not k8s.pod.name = x", host)
    assert not m("k8s.pod.name exists", host)


def test_host_process_has_container_id_host() -> None:
    host = event_from_mapping({"evt.type": "execve", "proc.name": "sudo"})
    assert get(host, FieldRef("container.id")) == "host"
    assert get(host, FieldRef("container.name")) == "host"
    assert not m("container.id != host", host)
    assert m("container.id != host")


def test_derived_process_fields() -> None:
    e = ev()
    assert get(e, FieldRef("proc.cmdline")) == "cat /etc/shadow"
    assert get(e, FieldRef("proc.pname")) == "bash"
    assert get(e, FieldRef("proc.aname", "0")) == "cat"
    assert get(e, FieldRef("proc.aname", "2")) == "containerd-shim"
    assert get(e, FieldRef("proc.aname", "9")) is MISSING
    assert get(e, FieldRef("proc.args", "0")) == "/etc/shadow"


def test_proc_name_is_truncated_like_the_kernel_comm() -> None:
    e = event_from_mapping({"evt.type": "execve", "proc.exepath": "/usr/sbin/httpd-foreground"})
    assert get(e, FieldRef("proc.name")) == "httpd-foregroun"
    assert not m("proc.name = httpd-foreground", e)


def test_fd_directory_and_filename() -> None:
    assert m("fd.directory = /etc and fd.filename = shadow and fd.typechar = f and fd.num >= 0")
    root = ev(fd__name="/shadow")
    assert get(root, FieldRef("fd.directory")) == "/"


def test_open_flags_drive_is_open_read_and_write() -> None:
    read = ev()
    write = ev(evt__arg__flags="O_WRONLY|O_CREAT")
    assert m("evt.is_open_read = true", read) and not m("evt.is_open_write = true", read)
    assert m("evt.is_open_write = true", write) and not m("evt.is_open_read = true", write)
    assert m("evt.arg.flags contains O_CREAT", write)


def test_string_operators() -> None:
    assert m("fd.name startswith /etc/ and fd.name endswith shadow and fd.name contains /sha")
    assert m("fd.name icontains SHADOW")
    assert not m("fd.name contains SHADOW")
    assert m("proc.name > 1 and not fd.name >= 0")  # strcmp order; the grammar wants a number here
    assert m("fd.name in (/etc/shadow, /etc/gshadow)")
    assert not m("fd.name in (/tmp/shadow-notes)")


def test_glob_star_matches_slash_and_brackets_negate() -> None:
    assert m("fd.name glob '/*/shadow'")
    assert m("fd.name glob '*shadow'")
    assert m("fd.name glob '/etc/[!g]shadow' or fd.name glob '/etc/sh[a-c]dow'")
    assert not m("fd.name glob '/etc/[!s]hadow'")
    assert m("fd.name iglob '/ETC/*'")
    assert not m("fd.name glob '/ETC/*'")


def test_regex_is_fully_anchored_re2() -> None:
    assert m("proc.name regex 'c.t'")
    assert not m("proc.name regex 'a'")
    with pytest.raises(CompileError, match="invalid regular expression"):
        compile_condition("proc.name regex '(a'")


def test_pmatch_is_component_wise() -> None:
    assert m("fd.name pmatch (/etc)")
    assert m("fd.name pmatch (/etc/shadow)")
    assert not m("fd.name pmatch (/et)")
    assert not m("fd.name pmatch (/etc/sha)")


def test_any_ancestor_without_index() -> None:
    assert m("proc.aname = containerd-shim")
    assert not m("proc.aname = cat")  # the process itself is not its own ancestor
    assert m("proc.aname in (systemd)")


def test_numeric_and_bool_fields() -> None:
    assert m("fd.num >= 0 and fd.num < 10 and fd.num in (3, 4)")
    failed = ev(evt__res="EACCES")
    assert m("fd.num = -1", failed)
    assert m("evt.is_open_read = true and evt.is_open_read != false")


def test_modifiers_oneof_anyof_allof() -> None:
    assert m("proc.name contains anyof (ca, zz)")
    assert m("proc.name contains allof (c, t)")
    assert not m("proc.name contains oneof (c, t)")
    assert m("proc.name contains oneof (c, zz)")
    assert not m("proc.name == anyof ()")


def test_transformers_and_field_to_field() -> None:
    assert m("toupper(proc.name) = CAT and tolower(proc.name) = cat")
    assert m("basename(fd.name) = shadow and len(proc.name) = 3")
    assert m("proc.name != val(proc.pname)")
    same = ev(proc__ancestors=["cat"])
    assert m("proc.name = val(proc.pname)", same)


def test_network_fields() -> None:
    conn = event_from_mapping({"evt.type": "connect", "fd.name": "10.0.0.5:40000->93.184.216.34:443"})
    assert m("fd.sip = 93.184.216.34 and fd.sport = 443 and fd.typechar = 4", conn)
    assert m("fd.net = 10.0.0.0/8 and fd.ip = 10.0.0.5", conn)
    assert not m("fd.ip != 10.0.0.5", conn)
    assert m("fd.snet in (93.184.216.0/24)", conn)


# ---------------------------------------------------------------- compile errors


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ("proc.nobody = x", "filter_check called with nonexistent field proc.nobody"),
        ("evt.type = nosuchcall", "unknown event type nosuchcall"),
        ("fd.num contains 1", "filter error: 'contains' operator not supported for numeric filters"),
        ("fd.name bcontains 0a", "filter error: 'bcontains' operator not supported for string filters"),
        (
            "fd.ip glob 1.2.3.4",
            "filter error: 'glob' operator not supported for ip address and network filters",
        ),
        (
            "evt.buffer bcontains 2g",
            "filter error: bcontains and bstartswith operator support hex strings only",
        ),
        ("evt.arg.nosuchparam = 1", "unknown event argument nosuchparam"),
        ("toupper(fd.name)[x] = foo", "filter error: transformer 'toupper' does not support field arguments"),
    ],
)
def test_compile_errors_use_falco_wording(cond: str, message: str) -> None:
    with pytest.raises(CompileError) as err:
        compile_condition(cond)
    assert err.value.message == message


def test_unknown_field_and_evttype_errors_are_classified_for_skip_if_unknown_filter() -> None:
    with pytest.raises(CompileError) as err:
        compile_condition("proc.nobody = x")
    assert err.value.kind == "unknown_field"
    with pytest.raises(CompileError) as err:
        compile_condition("evt.type = nosuchcall")
    assert err.value.kind == "unknown_evttype"


def test_macros_are_substituted_and_undefined_ones_refused() -> None:
    macros = {
        "spawned_process": parse("evt.type in (execve, execveat)"),
        "container": parse("container.id != host"),
    }
    flt = compile_filter(parse("spawned_process and container and proc.name = sudo"), macros)
    assert flt.matches(event_from_mapping({"evt.type": "execve", "proc.name": "sudo", "container.id": "abc"}))
    assert not flt.matches(event_from_mapping({"evt.type": "execve", "proc.name": "sudo"}))
    with pytest.raises(CompileError, match=r"Undefined macro 'nope' used in filter\."):
        compile_filter(parse("nope and proc.name = x"), macros)


def test_recursive_macros_are_an_error_not_a_hang() -> None:
    macros = {"a": parse("b and proc.name = x"), "b": parse("a")}
    with pytest.raises(CompileError, match="reference loop in macro"):
        compile_filter(parse("a"), macros)


def test_warning_for_field_name_used_as_a_string() -> None:
    flt = compile_condition("proc.name = proc.pname")
    assert flt.warnings == ["'proc.pname' may be a valid field misused as a const string value"]


# ---------------------------------------------------------------- event types for rule indexing


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("evt.type = execve and proc.name = x", {"execve"}),
        ("evt.type in (open, openat) or evt.type = openat2", {"open", "openat", "openat2"}),
        ("evt.type in (open, openat) and evt.type = openat", {"openat"}),
        ("proc.name = x", None),
        ("evt.num = 0", set()),
    ],
)
def test_evttypes(cond: str, expected) -> None:
    types = compile_condition(cond).evttypes
    assert (types if types is None else set(types)) == (expected if expected is None else set(expected))


def test_negated_evttype_matches_too_many_types() -> None:
    types = compile_condition("not evt.type = execve").evttypes
    assert types is not None and "execve" not in types and len(types) > 100
    assert len(compile_condition("evt.type != open").evttypes) > 100


# ---------------------------------------------------------------- events


def test_event_errors_are_clear() -> None:
    with pytest.raises(EventError, match="unknown field 'proc.nmae'"):
        event_from_mapping({"evt.type": "execve", "proc.nmae": "x"})
    with pytest.raises(EventError, match="needs evt.type"):
        event_from_mapping({"proc.name": "x"})
    with pytest.raises(EventError, match="not a number"):
        event_from_mapping({"evt.type": "openat", "fd.num": "three"})


def test_event_time_formats() -> None:
    e = event_from_mapping({"evt.type": "execve", "evt.time": "2024-05-01T10:11:12.123456789Z"})
    assert get(e, FieldRef("evt.time")) == "10:11:12.123456789"
    assert get(e, FieldRef("evt.time.iso8601")) == "2024-05-01T10:11:12.123456789Z"
    assert get(e, FieldRef("evt.rawtime.ns")) == 123456789


def test_long_exclusion_chains_keep_their_meaning() -> None:
    # shape of upstream exceptions: many "not (proc.name = x and ...)" on one guard field (a lookup table)
    cond = (
        "evt.type = openat and fd.name startswith /etc"
        " and not (proc.name = vi and fd.name = /etc/hosts)"
        " and not (proc.name in (apt, dpkg))"
        " and not (proc.name = cat and fd.name endswith .conf)"
        " and not (proc.name in (vi, nano) and user.name = root)"
        " and not (proc.name = sed and fd.directory = /etc/ssh)"
    )
    flt = compile_condition(cond)
    cases = {
        ("vi", "/etc/hosts", "app"): False,
        ("vi", "/etc/passwd", "app"): True,
        ("vi", "/etc/passwd", "root"): False,
        ("apt", "/etc/passwd", "app"): False,
        ("cat", "/etc/x.conf", "app"): False,
        ("cat", "/etc/shadow", "app"): True,
        ("sed", "/etc/ssh/sshd_config", "app"): False,
        ("sed", "/etc/shadow", "app"): True,
        ("nano", "/etc/shadow", "app"): True,
        ("bash", "/etc/shadow", "root"): True,
    }
    for (proc, path, user), expected in cases.items():
        e = event_from_mapping({"evt.type": "openat", "proc.name": proc, "fd.name": path, "user.name": user})
        assert flt.matches(e) is expected, (proc, path, user)
    no_proc = event_from_mapping({"evt.type": "openat", "fd.name": "/etc/shadow"})
    assert flt.matches(no_proc)  # no proc.name: none of the exclusions can match
