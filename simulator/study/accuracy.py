"""Structured pruning rates at (near) equal accuracy, per network, with their sources
(``accuracy_rates.yaml`` beside this module): the structured side of Ma et al.'s
comparison "at the same accuracy"."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import ConfigError, shown

RATES_FILE = Path(__file__).with_name("accuracy_rates.yaml")

_TEXT_FIELDS = ("structure", "metric", "dataset", "source", "citation", "url", "note")


@dataclass(frozen=True, kw_only=True)
class AccuracyRate:
    """The structured pruning rate a published work reached on a network without
    accuracy loss (or with ``accuracy_loss`` points of ``metric`` lost); ``rate`` is
    None where no figure was verified."""

    network: str
    structure: str
    rate: float | None
    accuracy_loss: float | None
    metric: str
    dataset: str
    source: str
    citation: str
    url: str
    note: str

    @property
    def known(self) -> bool:
        return self.rate is not None


def parse_rates(data: object, where: str) -> dict[str, AccuracyRate]:
    """The entries of an accuracy-rate document; a :class:`ConfigError` listing every
    problem (unknown or missing keys, a rate below 1, a known rate without a source)."""
    problems: list[str] = []
    if not isinstance(data, dict) or set(data) != {"networks"}:
        raise ConfigError(where, "expected one key, networks:")
    nets = data["networks"]
    if not isinstance(nets, dict) or not nets:
        raise ConfigError(where, "networks: expected a mapping of network names")
    out = {}
    for name, entry in nets.items():
        at = f"networks.{name}"
        if not isinstance(entry, dict):
            problems.append(f"{at}: expected a mapping")
            continue
        wanted = {*_TEXT_FIELDS, "rate", "accuracy_loss"}
        for key in sorted(set(entry) - wanted):
            problems.append(f"{at}.{key}: unknown key")
        for key in sorted(wanted - set(entry)):
            problems.append(f"{at}.{key}: missing")
        if set(entry) != wanted:
            continue
        for key in _TEXT_FIELDS:
            if not isinstance(entry[key], str):
                problems.append(f"{at}.{key}: expected text, got {shown(entry[key])}")
        rate, loss = entry["rate"], entry["accuracy_loss"]
        for key, value, low in (("rate", rate, 1.0), ("accuracy_loss", loss, -math.inf)):
            ok = value is None or (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= low
            )
            if not ok:
                problems.append(f"{at}.{key}: expected a finite number >= {low:g} or null")
        if rate is not None and not all(
            isinstance(entry[k], str) and entry[k].strip() for k in ("source", "citation", "metric")
        ):
            problems.append(f"{at}: a rate needs its source, citation and metric")
        if rate is not None and loss is None:
            problems.append(f"{at}.accuracy_loss: a rate needs the accuracy it was reached at")
        if not (isinstance(entry["note"], str) and entry["note"].strip()):
            problems.append(f"{at}.note: say where the figure was read, or why it is unknown")
        if not problems:
            out[name] = AccuracyRate(
                network=name,
                rate=None if rate is None else float(rate),
                accuracy_loss=None if loss is None else float(loss),
                **{k: entry[k].strip() for k in _TEXT_FIELDS},
            )
    if problems:
        raise ConfigError(where, problems)
    return out


@functools.cache
def accuracy_rates() -> dict[str, AccuracyRate]:
    """Every entry of ``accuracy_rates.yaml``, by network name."""
    from simulator.yamlio import read_yaml

    return parse_rates(read_yaml(RATES_FILE), str(RATES_FILE))


def rate_at_equal_accuracy(network: str) -> AccuracyRate | None:
    """The published structured rate of ``network`` (None for a network the file does
    not name)."""
    return accuracy_rates().get(network)
