"""Rule settings for ``sipflow check``: ``sipflow.toml``, or ``[tool.sipflow]`` in pyproject.toml.

```toml
[check]
disable = ["branch-without-cookie"]      # rule ids

[check.rules.slow-pdd]
max_ms = 3000                            # a threshold of the rule (see RULES)
severity = "warning"                     # error | warning | info

[check.rules."sip.malformed.date"]       # a parser defect code (quoted: the id has dots)
severity = "error"
```

In ``pyproject.toml`` the same tables sit under ``[tool.sipflow]``: ``[tool.sipflow.check]``,
``[tool.sipflow.check.rules.slow-pdd]``. Other tables of the file are left to others.

A family of rules (``sip.malformed``, the parser's defect codes) may be named where a rule
may, in ``disable`` and for a ``severity``: it stands for each of its rules (a severity given
to one of them wins over the family's). Written unquoted, ``[check.rules.sip.malformed.date]``
is read as the same table.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sipflow.checks.finding import Severity
from sipflow.checks.rules import RULES
from sipflow.errors import UsageError

__all__ = ["CheckConfig", "load_config"]

_RULES = {r.id: r for r in RULES}
_FAMILIES: dict[str, tuple[str, ...]] = {}
"""Family name → the ids of its rules."""
for _r in RULES:
    if _r.family is not None:
        _FAMILIES[_r.family] = (*_FAMILIES.get(_r.family, ()), _r.id)
_KNOWN = ", ".join(
    [*(r.id for r in RULES if r.family is None), *(f"{f} (its {f}.* rules)" for f in _FAMILIES)]
)
"""The rules an error message lists: those of families by their family only."""
_SEVERITIES = ", ".join(s.value for s in Severity)


def _known_rule(rule_id: str, where: str) -> None:
    if rule_id not in _RULES and rule_id not in _FAMILIES:
        raise UsageError(f"{where}: unknown rule {rule_id!r} (known: {_KNOWN})")


def _known_threshold(rule_id: str, name: str, where: str) -> None:
    if rule_id in _FAMILIES:
        raise UsageError(f"{where}: {rule_id} is a family of rules, which has no thresholds")
    known = _RULES[rule_id].thresholds
    if name not in known:
        has = f"its thresholds are {', '.join(known)}" if known else "it has no thresholds"
        raise UsageError(f"{where}: rule {rule_id} has no threshold {name!r} ({has})")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    """Which rules run, with which thresholds and severities (validated when built)."""

    disabled: frozenset[str] = frozenset()
    """Ids of rules that do not run (a family given here stands for each of its rules)."""
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Rule id → threshold name → value, overriding the defaults in ``Rule.thresholds``."""
    severity: Mapping[str, Severity] = field(default_factory=dict)
    """Rule id → severity, overriding ``Rule.severity`` (a family's stands for each of its
    rules that has none of its own)."""

    def __post_init__(self) -> None:
        for rule_id in sorted(self.disabled):
            _known_rule(rule_id, "disabled rules")
        for rule_id, values in self.thresholds.items():
            _known_rule(rule_id, "thresholds")
            for name, value in values.items():
                _known_threshold(rule_id, name, f"thresholds of {rule_id}")
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise UsageError(f"thresholds of {rule_id}: {name} must be a number >= 0, not {value!r}")
        for rule_id, severity in self.severity.items():
            _known_rule(rule_id, "severities")
            if not isinstance(severity, Severity):
                raise UsageError(f"severity of {rule_id}: {severity!r} is not one of {_SEVERITIES}")
        # Families stand for their rules: what the run and the reports read are rule ids.
        if any(rule_id in _FAMILIES for rule_id in self.disabled):
            ids = (_FAMILIES.get(rule_id, (rule_id,)) for rule_id in self.disabled)
            object.__setattr__(self, "disabled", frozenset(i for group in ids for i in group))
        if any(rule_id in _FAMILIES for rule_id in self.severity):
            graded = {i: v for f, v in self.severity.items() if f in _FAMILIES for i in _FAMILIES[f]}
            graded |= {k: v for k, v in self.severity.items() if k not in _FAMILIES}
            object.__setattr__(self, "severity", MappingProxyType(graded))


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a table")
    return value


def _rule_tables(rules: Mapping[str, Any], where: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(rule id, settings) of each table under ``rules``. An unquoted dotted id
    (``[check.rules.sip.malformed.date]``) comes from TOML as nested tables: a table found
    among settings (which are never tables) continues the id."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for rule_id, settings in rules.items():
        table = _table(settings, f"{where}.{rule_id}")
        nested = {k: v for k, v in table.items() if isinstance(v, dict)}
        own = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if own or not nested:
            out.append((rule_id, own))
        out.extend(_rule_tables({f"{rule_id}.{k}": v for k, v in nested.items()}, where))
    return out


def _from_check_table(check: Mapping[str, Any], file: str, prefix: str) -> CheckConfig:
    disabled: set[str] = set()
    thresholds: dict[str, dict[str, float]] = {}
    severity: dict[str, Severity] = {}
    for key, value in check.items():
        where = f"{file}: {prefix}.{key}"
        if key == "disable":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"{where} must be a list of rule ids")
            for rule_id in value:
                _known_rule(rule_id, where)
            disabled.update(value)
        elif key == "rules":
            for rule_id, settings in _rule_tables(_table(value, where), where):
                rule_where = f"{where}.{rule_id}"
                _known_rule(rule_id, f"{file}: [{prefix}.rules.{rule_id}]")
                for name, setting in settings.items():
                    setting_where = f"{rule_where}.{name}"
                    if name == "severity":
                        try:
                            severity[rule_id] = Severity(str(setting).lower())
                        except ValueError:
                            raise UsageError(
                                f"{setting_where}: {setting!r} is not one of {_SEVERITIES}"
                            ) from None
                        continue
                    _known_threshold(rule_id, name, setting_where)
                    if isinstance(setting, bool) or not isinstance(setting, int | float) or setting < 0:
                        raise UsageError(f"{setting_where} must be a number >= 0, not {setting!r}")
                    thresholds.setdefault(rule_id, {})[name] = float(setting)
        else:
            raise UsageError(f"{where}: unknown key (known: disable, rules)")
    return CheckConfig(
        disabled=frozenset(disabled),
        thresholds=MappingProxyType({k: MappingProxyType(v) for k, v in thresholds.items()}),
        severity=MappingProxyType(severity),
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the configuration: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def load_config(
    path: str | os.PathLike[str] | None = None, *, search_from: str | os.PathLike[str] = "."
) -> CheckConfig:
    """The check settings from ``path`` (a sipflow.toml), else ``sipflow.toml`` in
    ``search_from``, else ``[tool.sipflow]`` of ``pyproject.toml`` there, else the defaults.

    Raises ``UsageError`` naming the file and the key for a file that cannot be read, is not
    TOML, or holds an unknown rule, key, threshold or severity.
    """
    if path is not None:
        file = Path(path)
        data = _read(file)
        return _from_check_table(_table(data.get("check", {}), f"{file}: [check]"), str(file), "check")
    base = Path(search_from)
    own = base / "sipflow.toml"
    if own.is_file():
        data = _read(own)
        return _from_check_table(_table(data.get("check", {}), f"{own}: [check]"), str(own), "check")
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        data = _read(pyproject)
        tool = data.get("tool", {})
        sipflow = tool.get("sipflow") if isinstance(tool, dict) else None
        if sipflow is None:
            return CheckConfig()
        section = _table(sipflow, f"{pyproject}: [tool.sipflow]")
        check = _table(section.get("check", {}), f"{pyproject}: [tool.sipflow.check]")
        return _from_check_table(check, str(pyproject), "tool.sipflow.check")
    return CheckConfig()
