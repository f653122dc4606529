"""Rule settings for ``sipflow check``: ``sipflow.toml``, or ``[tool.sipflow]`` in pyproject.toml.

```toml
[check]
disable = ["branch-without-cookie"]      # rule ids

[check.rules.slow-pdd]
max_ms = 3000                            # a threshold of the rule (see RULES)
severity = "warning"                     # error | warning | info
```

In ``pyproject.toml`` the same tables sit under ``[tool.sipflow]``: ``[tool.sipflow.check]``,
``[tool.sipflow.check.rules.slow-pdd]``. Other tables of the file are left to others.
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
_SEVERITIES = ", ".join(s.value for s in Severity)


def _known_rule(rule_id: str, where: str) -> None:
    if rule_id not in _RULES:
        raise UsageError(f"{where}: unknown rule {rule_id!r} (known: {', '.join(_RULES)})")


def _known_threshold(rule_id: str, name: str, where: str) -> None:
    known = _RULES[rule_id].thresholds
    if name not in known:
        has = f"its thresholds are {', '.join(known)}" if known else "it has no thresholds"
        raise UsageError(f"{where}: rule {rule_id} has no threshold {name!r} ({has})")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    """Which rules run, with which thresholds and severities (validated when built)."""

    disabled: frozenset[str] = frozenset()
    """Ids of rules that do not run."""
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Rule id → threshold name → value, overriding the defaults in ``Rule.thresholds``."""
    severity: Mapping[str, Severity] = field(default_factory=dict)
    """Rule id → severity, overriding ``Rule.severity``."""

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


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a table")
    return value


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
            for rule_id, settings in _table(value, where).items():
                rule_where = f"{where}.{rule_id}"
                _known_rule(rule_id, f"{file}: [{prefix}.rules.{rule_id}]")
                for name, setting in _table(settings, rule_where).items():
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
