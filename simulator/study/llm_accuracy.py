"""Published accuracy of pruned LLMs (``llm_accuracy.yaml`` beside this module) and
the structured rate at equal accuracy it gives the LLM study: the structured pruning
whose published perplexity is closest to (not worse than, where one is) the
non-structured perplexity at the verdict's rate, at the same sequence length."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import ConfigError, shown

ACCURACY_FILE = Path(__file__).with_name("llm_accuracy.yaml")

KINDS = ("dense", "unstructured", "nm", "structured")
_TEXT = ("kind", "method", "pattern", "removes", "source", "citation", "url", "note")
_FIELDS = (*_TEXT, "sparsity", "params_dense", "params_pruned", "perplexity", "seq_len")


@dataclass(frozen=True, kw_only=True)
class PerplexityFigure:
    """One published perplexity of a model (``perplexity`` None where none was
    verified): dense, unstructured at ``sparsity`` (pruned fraction), N:M
    (``pattern``) or structured (``removes``; whole-model parameter counts
    ``params_dense`` and ``params_pruned`` as the source states them), evaluated at
    ``seq_len`` tokens."""

    kind: str
    method: str
    sparsity: float | None
    pattern: str
    removes: str
    params_dense: int | None
    params_pruned: int | None
    perplexity: float | None
    seq_len: int | None
    source: str
    citation: str
    url: str
    note: str

    @property
    def known(self) -> bool:
        return self.perplexity is not None

    @property
    def published_rate(self) -> float | None:
        """Whole-model weight-count rate from the stated parameter counts (structured)."""
        if self.params_dense is None or self.params_pruned is None:
            return None
        return self.params_dense / self.params_pruned


@dataclass(frozen=True, kw_only=True)
class ModelAccuracy:
    """Every published figure of one model, in one ``metric``."""

    model: str
    metric: str
    note: str
    figures: tuple[PerplexityFigure, ...]


def _number(value, *, integer: bool, low: float) -> bool:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    return ok and not isinstance(value, bool) and math.isfinite(value) and value >= low


def _figure_problems(f: dict, at: str) -> list[str]:
    problems = []
    for key in _TEXT:
        if not isinstance(f[key], str):
            problems.append(f"{at}.{key}: expected text, got {shown(f[key])}")
    if problems:
        return problems
    if f["kind"] not in KINDS:
        problems.append(f"{at}.kind: expected one of {', '.join(KINDS)}, got {shown(f['kind'])}")
    checks = (
        ("sparsity", False, 0.0),
        ("params_dense", True, 1),
        ("params_pruned", True, 1),
        ("perplexity", False, 1.0),
        ("seq_len", True, 1),
    )
    for key, integer, low in checks:
        v = f[key]
        if v is not None and not _number(v, integer=integer, low=low):
            kind = "an integer" if integer else "a finite number"
            problems.append(f"{at}.{key}: expected {kind} >= {low:g} or null, got {shown(v)}")
    if problems:
        return problems
    if not f["note"].strip():
        problems.append(f"{at}.note: say where the figure was read, or why it is unknown")
    if f["perplexity"] is not None:
        for key in ("source", "citation", "url"):
            if not f[key].strip():
                problems.append(f"{at}.{key}: a perplexity needs its {key}")
        if f["seq_len"] is None:
            problems.append(f"{at}.seq_len: a perplexity needs the sequence length it was read at")
    if f["kind"] in ("unstructured", "nm") and not (
        f["sparsity"] is not None and 0 < f["sparsity"] < 1
    ):
        problems.append(f"{at}.sparsity: {f['kind']} needs a pruned fraction in (0, 1)")
    if f["kind"] == "nm":
        n, _, m = f["pattern"].partition(":")
        if not (n.isdigit() and m.isdigit() and 0 < int(n) < int(m)):
            problems.append(f"{at}.pattern: expected N:M with 0 < N < M, got {shown(f['pattern'])}")
    if f["kind"] == "structured":
        if not f["removes"].strip():
            problems.append(f"{at}.removes: say what the structured pruning removes")
        if f["perplexity"] is not None:
            d, p = f["params_dense"], f["params_pruned"]
            if d is None or p is None or not p < d:
                problems.append(
                    f"{at}: a structured perplexity needs params_dense > params_pruned "
                    "(the counts the source states)"
                )
    return problems


def parse_accuracy(data: object, where: str) -> dict[str, ModelAccuracy]:
    """The models of an LLM accuracy document; a :class:`ConfigError` listing every
    problem, each with its key path (unknown or missing keys, wrong types, a figure
    without its source, citation, url or sequence length)."""
    if not isinstance(data, dict) or set(data) != {"models"}:
        raise ConfigError(where, "expected one key, models:")
    models = data["models"]
    if not isinstance(models, dict) or not models:
        raise ConfigError(where, "models: expected a mapping of model names")
    problems: list[str] = []
    out = {}
    for name, entry in models.items():
        at = f"models.{name}"
        if not isinstance(entry, dict) or set(entry) != {"metric", "note", "figures"}:
            problems.append(f"{at}: expected the keys metric, note, figures")
            continue
        if not (isinstance(entry["metric"], str) and entry["metric"].strip()):
            problems.append(f"{at}.metric: expected text")
        if not isinstance(entry["note"], str):
            problems.append(f"{at}.note: expected text")
        figs = entry["figures"]
        if not isinstance(figs, list) or not figs:
            problems.append(f"{at}.figures: expected a list of figures")
            continue
        parsed = []
        for i, f in enumerate(figs):
            fat = f"{at}.figures[{i}]"
            if not isinstance(f, dict):
                problems.append(f"{fat}: expected a mapping")
                continue
            bad = [f"{fat}.{k}: unknown key" for k in sorted(set(f) - set(_FIELDS))]
            bad += [f"{fat}.{k}: missing" for k in sorted(set(_FIELDS) - set(f))]
            bad = bad or _figure_problems(f, fat)
            problems += bad
            if not bad:
                parsed.append(
                    PerplexityFigure(
                        **{k: f[k].strip() for k in _TEXT},
                        sparsity=None if f["sparsity"] is None else float(f["sparsity"]),
                        params_dense=f["params_dense"],
                        params_pruned=f["params_pruned"],
                        perplexity=None if f["perplexity"] is None else float(f["perplexity"]),
                        seq_len=f["seq_len"],
                    )
                )
        if not problems:
            out[name] = ModelAccuracy(
                model=name,
                metric=entry["metric"].strip(),
                note=entry["note"].strip(),
                figures=tuple(parsed),
            )
    if problems:
        raise ConfigError(where, problems)
    return out


@functools.cache
def llm_accuracy() -> dict[str, ModelAccuracy]:
    """Every model of ``llm_accuracy.yaml``, by model name."""
    from simulator.yamlio import read_yaml

    return parse_accuracy(read_yaml(ACCURACY_FILE), str(ACCURACY_FILE))


@dataclass(frozen=True, kw_only=True)
class EqualAccuracy:
    """The structured side of one model's comparison at equal accuracy.

    ``status``: ``"matched"`` (a structured figure no worse than the non-structured
    one), ``"structured less accurate"`` (every structured figure at that sequence
    length is worse: the closest is taken and ``perplexity_gap`` says by how much),
    or why none is known. ``structured_rate`` is the rate over the study's weights
    (the decoder blocks' linear layers): the parameters the source removed, all from
    the blocks, taken from the blocks' ``block_weights``; ``published_rate`` is the
    whole-model rate from the stated counts. ``perplexity_gap`` is structured minus
    non-structured (positive: structured is worse)."""

    status: str
    metric: str
    structured_rate: float | None = None
    published_rate: float | None = None
    nonstructured_perplexity: float | None = None
    nonstructured_method: str = ""
    structured_perplexity: float | None = None
    structured_method: str = ""
    seq_len: int | None = None
    source: str = ""

    @property
    def known(self) -> bool:
        return self.structured_rate is not None

    @property
    def perplexity_gap(self) -> float | None:
        if self.structured_perplexity is None or self.nonstructured_perplexity is None:
            return None
        return self.structured_perplexity - self.nonstructured_perplexity


def equal_accuracy(
    acc: ModelAccuracy | None, nonstructured_rate: float, block_weights: float
) -> EqualAccuracy:
    """The structured figure at equal accuracy with unstructured pruning at
    ``nonstructured_rate`` (the best published unstructured perplexity at that
    sparsity) for a model whose decoder blocks hold ``block_weights`` weights; see
    :class:`EqualAccuracy`."""
    if acc is None:
        return EqualAccuracy(status="unknown accuracy (model not in the accuracy file)", metric="")
    sparsity = 1 - 1 / nonstructured_rate
    unstructured = [
        f
        for f in acc.figures
        if f.kind == "unstructured" and f.known and math.isclose(f.sparsity or 0, sparsity)
    ]
    structured = [f for f in acc.figures if f.kind == "structured" and f.known]
    if not unstructured:
        return EqualAccuracy(status="unknown non-structured accuracy", metric=acc.metric)
    if not structured:
        return EqualAccuracy(status="unknown structured rate", metric=acc.metric)
    pairs = [(u, s) for u in unstructured for s in structured if u.seq_len == s.seq_len]
    if not pairs:
        return EqualAccuracy(
            status="unknown structured rate at the same sequence length", metric=acc.metric
        )
    # the best non-structured figure at each sequence length, then the closest structured
    best: dict[int | None, PerplexityFigure] = {}
    for u, _ in pairs:
        if u.seq_len not in best or u.perplexity < best[u.seq_len].perplexity:  # type: ignore[operator]
            best[u.seq_len] = u
    cands = [(best[s.seq_len], s) for _, s in pairs]
    no_worse = [(u, s) for u, s in cands if s.perplexity <= u.perplexity]  # type: ignore[operator]
    if no_worse:
        u, s = max(no_worse, key=lambda c: (c[1].perplexity, c[1].published_rate))
        status = "matched"
    else:
        u, s = min(cands, key=lambda c: c[1].perplexity - c[0].perplexity)  # type: ignore[operator]
        status = "structured less accurate"
    removed = s.params_dense - s.params_pruned  # type: ignore[operator]
    if not (s.params_dense >= block_weights > removed):  # type: ignore[operator]
        raise ConfigError(
            str(ACCURACY_FILE),
            f"models.{acc.model}: the study's block weights ({block_weights:.0f}) do not lie "
            f"between the {removed} parameters removed and the {s.params_dense} stated",
        )
    return EqualAccuracy(
        status=status,
        metric=acc.metric,
        structured_rate=block_weights / (block_weights - removed),
        published_rate=s.published_rate,
        nonstructured_perplexity=u.perplexity,
        nonstructured_method=u.method,
        structured_perplexity=s.perplexity,
        structured_method=s.method,
        seq_len=s.seq_len,
        source=s.source,
    )
