"""Every message the rules loader gives, in one place: Falco's own texts (rule_loading_messages.h and the
loader's literals, as Falco 0.44 prints them) and the grader's limits with their texts."""

from __future__ import annotations

WARNING_APPEND = (
    "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."
)
WARNING_ENABLED = (
    "The standalone 'enabled' key usage is deprecated. The correct approach requires also a "
    "'replace' entry under the 'override' key (i.e. 'enabled: replace')."
)
ERROR_OVERRIDE_APPEND = (
    "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry "
    "(e.g. 'condition: append') under 'override' instead."
)
ERROR_NO_PREVIOUS_LIST = (
    "List uses 'append' or 'override.items: append' but no list by that name already exists"
)
ERROR_NO_PREVIOUS_MACRO = (
    "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_APPEND = (
    "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_REPLACE = (
    "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists"
)
RGX_IDENTIFIER = "([a-zA-Z]+[a-zA-Z0-9_]*)"
RGX_BARESTR = "([^()\"'[:space:]=,]+)"
WARNING_INVALID_MACRO_NAME = (
    "Macro has an invalid name. Macro names should match a regular expression: " + RGX_IDENTIFIER
)
WARNING_INVALID_LIST_NAME = (
    "List has an invalid name. List names should match a regular expression: " + RGX_BARESTR
)
WARNING_UNUSED_MACRO = "Macro not referred to by any other rule/macro"
WARNING_UNUSED_LIST = "List not referred to by any other rule/macro"
WARNING_NO_EVTTYPE = "Rule matches too many evt.type values. This has a significant performance penalty."
WARNING_CONTAINER_INFO = (
    "%container.info is deprecated and no more useful, and will be dropped by Falco 1.0.0. "
    "The container plugin will automatically add required fields to the output message."
)

# ---- the grader's limits (Falco has none; its own rules stay far below each: 33 list items, 1,190-character
# conditions, 124 nodes per expanded rule). A learner's file past them is refused with a message that names
# the item, instead of running for minutes (a macro used twice by each of twenty macros expands to 2**20).
MAX_RULES_BYTES = 4 * 1024 * 1024  # upstream rules files are < 100 KB; bigger is not a rules file to grade
MAX_YAML_VALUES = 50_000  # YAML nodes in one rules file
MAX_LIST_ITEMS = 10_000  # items of one list, nested lists expanded
MAX_CONDITION_CHARS = 64 * 1024  # a condition as written (appends included)
MAX_EXPANDED_CHARS = 256 * 1024  # a condition once its lists are substituted
MAX_TOTAL_NODES = 20_000  # checks of all rules loaded, macros expanded
SCAN_ABOVE = 64 * 1024  # smaller files cannot hold MAX_YAML_VALUES nodes


def too_large_file(size: int) -> str:
    return (
        f"the rules file is {size / 1048576:.1f} MB; the grader reads rules files up to "
        f"{MAX_RULES_BYTES // 1048576} MB (Falco's own files are under 100 KB)"
    )


def too_many_yaml_values() -> str:
    return (
        f"the rules file holds more than {MAX_YAML_VALUES:,} YAML values; the grader reads rules files up to "
        "that size (Falco's own default rules file holds under 2,000)"
    )


def too_many_list_items(name: str) -> str:
    return (
        f"list '{name}' has more than {MAX_LIST_ITEMS:,} items once the lists it names are expanded; the "
        "grader refuses lists that long (Falco's own lists hold fewer than 100)"
    )


def condition_too_long(item: str, length: int) -> str:
    return (
        f"the condition of {item} is {length:,} characters long; the grader refuses conditions over "
        f"{MAX_CONDITION_CHARS:,} characters (Falco's own stay under 2,000): use lists and macros"
    )


def condition_grows_too_long(item: str, list_name: str) -> str:
    return (
        f"the condition of {item} grows past {MAX_EXPANDED_CHARS:,} characters once list '{list_name}' is "
        "substituted; the grader refuses conditions that long"
    )


def condition_too_large(item: str, limit: int, via: str | None) -> str:
    through = f" (through macro '{via}')" if via else ""
    return (
        f"the condition of {item} expands to more than {limit:,} checks once its macros are expanded"
        f"{through}; the grader refuses conditions that large (Falco's own rules stay under 200): a macro "
        "that uses another macro several times doubles its size at each level"
    )


def rules_too_large(item: str) -> str:
    return (
        f"the rules loaded up to {item} expand to more than {MAX_TOTAL_NODES:,} checks in all; the grader "
        "refuses rules sets that large (all of Falco's published rules files together hold under 2,500)"
    )


# ---- Falco's literal loader messages (rule_loader_reader/collector/compiler.cpp)
MSG_APPENDED_RULE_MUST_HAVE_EXCEPTIONS_OR = "Appended rule must have exceptions or condition property"
MSG_CAN_NOT_APPEND_EXCEPTION_COMPS_TO = "Can not append exception comps to existing exception, only values"
MSG_CAN_NOT_APPEND_EXCEPTION_FIELDS_TO = "Can not append exception fields to existing exception, only values"
MSG_CAN_T_DECODE_YAML_SCALAR_VALUE = "Can't decode YAML scalar value"
MSG_EXPECTED_VALUES_ARRAY_TO_CONTAIN_A = "Expected values array to contain a list of strings"
MSG_FIELDS_AND_COMPS_MUST_BOTH_BE = "Fields and comps must both be strings"
MSG_FIELDS_AND_VALUES_LISTS_MUST_HAVE = "Fields and values lists must have equal length"
MSG_INVALID_PRIORITY = "Invalid priority"
MSG_NO_FIELDS_KEY = "Item has no mapping for key 'fields'"
MSG_OVERRIDING_APPENDING_EXCEPTION_WITH_NO_VALUES = "Overriding/appending exception with no values"
MSG_PLUGIN_VERSION_ALTERNATIVE_MUST_BE_A = "Plugin version alternative must be a mapping"
MSG_PLUGIN_VERSION_MUST_BE_A_MAPPING = "Plugin version must be a mapping"
MSG_RULES_CONTENT_IS_NOT_YAML = "Rules content is not yaml"
MSG_RULES_CONTENT_IS_NOT_YAML_ARRAY = "Rules content is not yaml array of objects"
MSG_RULE_EXCEPTIONS_MUST_BE_A_SEQUENCE = "Rule exceptions must be a sequence"
MSG_RULE_EXCEPTION_ITEM_MUST_HAVE_FIELDS = (
    "Rule exception item must have fields property with a list of fields"
)
MSG_RULE_EXCEPTION_MUST_BE_A_MAPPING = "Rule exception must be a mapping"
MSG_RULE_EXCEPTION_MUST_HAVE_FIELDS_PROPERTY = (
    "Rule exception must have fields property with a list of fields"
)
MSG_RULE_EXCEPTION_MUST_HAVE_VALUES_PROPERTY = (
    "Rule exception must have values property with a list of values"
)
MSG_RULE_EXCEPTION_VALUES_MUST_BE_A = "Rule exception values must be a sequence"
MSG_RULE_HAS_BEEN_RE_DEFINED_WITH = "Rule has been re-defined with a different source"
MSG_RULE_HAS_ENABLED_KEY_BUT_NO = "Rule has 'enabled' key but no rule by that name already exists"
MSG_SEQUENCE_VALUE_IS_NOT_SCALAR = "sequence value is not scalar"
MSG_THE_RULES_CONTENT_IS_NESTED_TOO = "the rules content is nested too deeply"
MSG_THE_RULES_FILE_CONTAINS_NUL_BYTES = "the rules file contains NUL bytes: it is binary, not YAML"
MSG_THE_RULE_MUST_HAVE_AT_LEAST = "The rule must have at least one field that can be replaced"
MSG_THE_YAML_IS_NESTED_TOO_DEEPLY = "the YAML is nested too deeply"
MSG_UNEXPECTED_ELEMENT_TYPE_EACH_ELEMENT_SHOULD = (
    "Unexpected element type. Each element should be a yaml associative array."
)
MSG_UNKNOWN_TOP_LEVEL_ITEM = "Unknown top level item"
MSG_VALUE_IS_NOT_A_SEQUENCE = "Value is not a sequence"
MSG_VALUE_MUST_BE_NON_EMPTY = "Value must be non-empty"
MSG_VALUE_OF_OVERRIDE_MUST_BE_A = "Value of 'override' must be a mapping of key: append|replace"
MSG_VALUE_OF_PLUGIN_VERSION_ALTERNATIVES_MUST = "Value of plugin version alternatives must be a sequence"
MSG_VALUE_OF_REQUIRED_PLUGIN_VERSIONS_MUST = "Value of required_plugin_versions must be a sequence"
