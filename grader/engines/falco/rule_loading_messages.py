"""Every message the rules loader gives, in one place: Falco's own texts (rule_loading_messages.h and the
loader's literals, as Falco 0.44 prints them) and the grader's limits with their texts."""

from __future__ import annotations

WARNING_APPEND = ("'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under "
                  "'override' instead.")
WARNING_ENABLED = ("The standalone 'enabled' key usage is deprecated. The correct approach requires also a "
                   "'replace' entry under the 'override' key (i.e. 'enabled: replace').")
ERROR_OVERRIDE_APPEND = ("Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry "
                         "(e.g. 'condition: append') under 'override' instead.")
ERROR_NO_PREVIOUS_LIST = "List uses 'append' or 'override.items: append' but no list by that name already exists"
ERROR_NO_PREVIOUS_MACRO = ("Macro uses 'append' or 'override.condition: append' but no macro by that name "
                           "already exists")
ERROR_NO_PREVIOUS_RULE_APPEND = ("Rule uses 'append' or 'override.<key>: append' but no rule by that name "
                                 "already exists")
ERROR_NO_PREVIOUS_RULE_REPLACE = ("An 'override.<key>: replace' to a rule was requested but no rule by that "
                                  "name already exists")
RGX_IDENTIFIER = "([a-zA-Z]+[a-zA-Z0-9_]*)"
RGX_BARESTR = "([^()\"'[:space:]=,]+)"
WARNING_INVALID_MACRO_NAME = ("Macro has an invalid name. Macro names should match a regular expression: "
                              + RGX_IDENTIFIER)
WARNING_INVALID_LIST_NAME = "List has an invalid name. List names should match a regular expression: " + RGX_BARESTR
WARNING_UNUSED_MACRO = "Macro not referred to by any other rule/macro"
WARNING_UNUSED_LIST = "List not referred to by any other rule/macro"
WARNING_NO_EVTTYPE = "Rule matches too many evt.type values. This has a significant performance penalty."
WARNING_CONTAINER_INFO = ("%container.info is deprecated and no more useful, and will be dropped by Falco 1.0.0. "
                          "The container plugin will automatically add required fields to the output message.")

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
    return (f"the rules file is {size / 1048576:.1f} MB; the grader reads rules files up to "
            f"{MAX_RULES_BYTES // 1048576} MB (Falco's own files are under 100 KB)")


def too_many_yaml_values() -> str:
    return (f"the rules file holds more than {MAX_YAML_VALUES:,} YAML values; the grader reads rules files up to "
            "that size (Falco's own default rules file holds under 2,000)")


def too_many_list_items(name: str) -> str:
    return (f"list '{name}' has more than {MAX_LIST_ITEMS:,} items once the lists it names are expanded; the "
            "grader refuses lists that long (Falco's own lists hold fewer than 100)")


def condition_too_long(item: str, length: int) -> str:
    return (f"the condition of {item} is {length:,} characters long; the grader refuses conditions over "
            f"{MAX_CONDITION_CHARS:,} characters (Falco's own stay under 2,000): use lists and macros")


def condition_grows_too_long(item: str, list_name: str) -> str:
    return (f"the condition of {item} grows past {MAX_EXPANDED_CHARS:,} characters once list '{list_name}' is "
            "substituted; the grader refuses conditions that long")


def condition_too_large(item: str, limit: int, via: str | None) -> str:
    through = f" (through macro '{via}')" if via else ""
    return (f"the condition of {item} expands to more than {limit:,} checks once its macros are expanded"
            f"{through}; the grader refuses conditions that large (Falco's own rules stay under 200): a macro "
            "that uses another macro several times doubles its size at each level")


def rules_too_large(item: str) -> str:
    return (f"the rules loaded up to {item} expand to more than {MAX_TOTAL_NODES:,} checks in all; the grader "
            "refuses rules sets that large (all of Falco's published rules files together hold under 2,500)")
