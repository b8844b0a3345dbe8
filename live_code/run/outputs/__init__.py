"""Validate a task's outputs in /out against the contract; every check returns Problems, never bools.

The gate judges as YMIR does (ymir-contract.md sections 6-8 and "What YMIR's own parsers
enforce"): each check is a rule of ``RULES``, an *error* where a YMIR version (2.5.0 or 1.1.0)
rejects the file or silently loses data for it, a *warning* where none does. ``RULES`` names the
parser for each; ``raise_for_problems`` refuses only errors.

The package: ``_rules`` (the table and the problems), one module per output file (``training``,
``mining``, ``infer``) and ``task`` (monitor.txt and a task's whole outputs).
"""

from live_code.run.outputs._rules import ERROR, MAX_PROBLEMS_PER_FILE, RULES, WARNING, Problem, Rule
from live_code.run.outputs.infer import validate_infer_result
from live_code.run.outputs.mining import validate_mining_result
from live_code.run.outputs.task import (
    log_warnings,
    raise_for_problems,
    read_candidates,
    validate_monitor,
    validate_outputs,
)
from live_code.run.outputs.training import validate_training_result

__all__ = [
    "ERROR",
    "MAX_PROBLEMS_PER_FILE",
    "RULES",
    "WARNING",
    "Problem",
    "Rule",
    "log_warnings",
    "raise_for_problems",
    "read_candidates",
    "validate_infer_result",
    "validate_mining_result",
    "validate_monitor",
    "validate_outputs",
    "validate_training_result",
]
