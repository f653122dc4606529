"""The built-in rules of ``sipflow check``: protocol and quality problems as ``Finding`` records.

Each rule is a function registered by a decorator carrying its stable id, its default
severity, a one-line summary, an explanation (what a finding means and its usual causes) and
its thresholds with their defaults (``sipflow.checks.registry``). The rules live in one module
per family, each with a registry of its own, and ``REGISTRY`` gathers them here in this order:
``transactions`` (final responses, ACKs, Via, retransmissions), ``dialogs`` (CSeq order,
requests outside a dialog, 481, CANCEL), ``headers`` (mandatory headers, Content-Length, Via
branch, To tag), ``sdp`` (codecs, unreachable media), ``timing`` (PDD, setup time) and
``registrations`` (``register-storm``); after them come the parser's defect codes, one rule
each (``sipflow.checks.defects``, the ``sip.malformed`` family). ``RULES`` is the catalogue
(the docs and the check configuration read it). ``run_rules`` applies every enabled rule to
every item of an analysis its ``Rule.kinds`` cover: most rules hold for calls and non-call
items alike (a missing header in a REGISTER is as wrong as in an INVITE), those about INVITE
dialogs (ACKs, PDD, SDP offer/answer...) skip registrations, subscriptions, OPTIONS and
MESSAGE items, and ``register-storm`` looks at registrations only. The findings come ordered
by call, then by frame; those of no call (payloads that could not be parsed) come last.

The observer sees each hop of a proxied call, so a message relayed with the same defect is
reported once per hop, each time with its own frames.
"""

from __future__ import annotations

from typing import Final

from sipflow.checks import defects, dialogs, headers, media, registrations, sdp, timing, transactions
from sipflow.checks.finding import Finding
from sipflow.checks.registry import Registry, Rule, Scope, Settings
from sipflow.model.analysis import Analysis

__all__ = ["REGISTRY", "RULES", "Rule", "rule", "run_rules"]

REGISTRY: Final = Registry()
"""The one registry of built-in rules: the rule modules', in this order, then the defect codes."""
REGISTRY.include(
    transactions.REGISTRY,
    dialogs.REGISTRY,
    headers.REGISTRY,
    sdp.REGISTRY,
    timing.REGISTRY,
    registrations.REGISTRY,
    media.REGISTRY,
)

# ------------------------------------------------------------------------------ defects

REGISTRY.family(defects.FAMILY, defects.MESSAGE_RULES, defects.message_defects)
REGISTRY.family(defects.FAMILY, (defects.MALFORMED_RULE,), defects.malformed_payloads, scope=Scope.ANALYSIS)

# ---------------------------------------------------------------------------------- engine

RULES: Final[tuple[Rule, ...]] = REGISTRY.rules
"""The catalogue of built-in rules, in the order their findings sort within a frame."""


def rule(rule_id: str) -> Rule:
    """The rule with this id (``KeyError`` when there is none)."""
    return REGISTRY.get(rule_id)


def run_rules(analysis: Analysis, config: Settings | None = None) -> list[Finding]:
    """Apply every enabled rule to every item of ``analysis``.

    ``config`` (a ``CheckConfig``: ``load_config``) disables rules, changes their thresholds
    and severities; None runs every rule with its defaults. Findings come ordered by call,
    then by the first frame they name, then by the rule's place in ``RULES``; those of no
    call come last.
    """
    return REGISTRY.run(analysis, config)
