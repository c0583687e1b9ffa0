"""The LLM study's report: the answer to "is unstructured sparsity beneficial for LLM
inference, and where?" in sentences computed from the verdict, a table of where it
wins, then the CNN study's verdict, evidence and appendix (:mod:`.report`) for the
workloads."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from simulator.document import Block, Heading, Paragraph, Table
from simulator.study.answer import FAMILIES
from simulator.study.report import pct, report_blocks

TITLE = "Is unstructured sparsity beneficial for LLM inference, and where?"


def _split(network: str) -> tuple[str, str, int]:
    """(model, phase, batch) of a workload name ``"MODEL PHASE bB"``."""
    model, phase, batch = network.rsplit(" ", 2)
    return model, phase, int(batch[1:])


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}x" if math.isclose(lo, hi, rel_tol=5e-3) else f"{lo:.2f}-{hi:.2f}x"


def _where(rows: pd.DataFrame) -> str:
    """Phases and batches of ``rows``, e.g. "decode at batch 1, 8"."""
    parts = []
    for phase in ("decode", "prefill"):
        b = sorted({_split(n)[2] for n in rows["network"] if _split(n)[1] == phase})
        if b:
            parts.append(f"{phase} at batch {', '.join(map(str, b))}")
    return "; ".join(parts)


def blocks_note(verdict: pd.DataFrame) -> str:
    """How many of each model's blocks were simulated: "2 of 32 blocks simulated per
    model, totals scaled by the block count", or "every block simulated"."""
    if verdict.empty or "blocks_simulated" not in verdict:
        return ""
    pairs = sorted(set(zip(verdict["blocks_simulated"], verdict["blocks"], strict=True)))
    if all(a == b for a, b in pairs):
        return "every block simulated"
    counts = ", ".join(f"{int(a)} of {int(b)}" for a, b in pairs)
    return f"{counts} blocks simulated per model, totals scaled by the block count"


def _breakeven_text(fb: pd.DataFrame) -> str:
    """Where the latency break-even falls, by phase: "it breaks even with dense (in
    latency) from 5.0-6.1x in decode (6 of 6 pairs), never up to 20x in prefill"."""
    searched = str(fb["searched"].iloc[0])
    lo, hi = (float(x) for x in searched.rstrip("x").split("-"))
    parts = []
    for phase in ("decode", "prefill"):
        g = fb[[_split(n)[1] == phase for n in fb["network"]]]
        if g.empty:
            continue
        rates = g["latency_breakeven_rate"]
        finite = rates[rates.map(math.isfinite)]
        if finite.empty:
            parts.append(f"never up to {hi:g}x in {phase}")
        elif (finite <= lo * (1 + 1e-9)).all():
            parts.append(f"already at {lo:g}x in {phase} ({len(finite)} of {len(g)} pairs)")
        else:
            parts.append(f"from {_span(finite)} in {phase} ({len(finite)} of {len(g)} pairs)")
    return "it breaks even with dense in latency " + ", ".join(parts)


def answer_sentences(
    verdict: pd.DataFrame, breakeven: pd.DataFrame, compared: pd.DataFrame | None = None
) -> list[str]:
    """The answer, one sentence per platform family and one overall, from the verdict
    (decided at its margin) and the whole-network compute break-evens; with
    ``compared`` (structured_vs_nonstructured), one more on the weight widths the
    verdict did not take (4-bit weights where a platform also runs 8)."""
    if verdict.empty:
        return []
    v = verdict.copy()
    margin = float(v["margin"].iloc[0])
    rate = float(v["nonstructured_rate"].iloc[0])
    sparsity = 1 - 1 / rate
    wins = v[v["beats_dense_latency"].astype(bool)]
    out = [
        f"At {rate:g}x ({sparsity:.0%} unstructured sparsity), unstructured sparsity runs "
        f"faster than "
        f"dense by more than {pct(margin)} in {len(wins)} of {len(v)} workload/platform "
        f"pairs, and faster than structured pruning (heads and MLP channels) at the "
        f"same rate in {int(v['beats_structured_latency'].astype(bool).sum())}."
    ]
    be = breakeven[breakeven["layer"] == "(network)"] if not breakeven.empty else breakeven
    for family, title in FAMILIES:
        f = v[v["platform_class"] == family]
        if f.empty:
            continue
        fw = f[f["beats_dense_latency"].astype(bool)]
        platforms = ", ".join(sorted(set(f["platform"])))
        text = f"{title} ({platforms}): "
        if fw.empty:
            text += f"never faster than dense (speedup {_span(f['speedup_vs_dense'])} at {rate:g}x)"
        else:
            text += (
                f"faster than dense in {len(fw)} of {len(f)} pairs ({_where(fw)}; speedup "
                f"{_span(fw['speedup_vs_dense'])})"
            )
            if len(fw) < len(f):
                text += f", {_span(f['speedup_vs_dense'])} over all its pairs"
        fb = be.merge(f[["network", "platform", "weight_bits"]]) if not be.empty else be
        if not fb.empty:
            text += "; " + _breakeven_text(fb)
        s = f["latency_vs_structured_same_rate"]
        text += (
            f"; against structured pruning at the same rate its latency is "
            f"{_span(s)} of structured's"
        )
        nm = f["nm_speedup_vs_dense"]
        text += (
            f"; 2:4 runs at {_span(nm)} of dense speed ({', '.join(sorted(set(f['nm_engine'])))})."
        )
        out.append(text)
    if compared is not None and not compared.empty:
        keys = ["network", "platform", "weight_bits"]
        other = compared.merge(v[keys], on=keys, how="left", indicator=True)
        other = other[other["_merge"] == "left_only"]
        for wb, g in other.groupby("weight_bits"):
            be_w = be.merge(g[keys]) if not be.empty else be
            text = (
                f"At {int(wb)}-bit weights ({', '.join(sorted(set(g['platform'])))}; not in the "
                f"verdict): unstructured sparsity at {rate:g}x runs at "
                f"{_span(g['speedup_vs_dense'])} of dense speed, {_span(g['nm_speedup_vs_dense'])} "
                "for 2:4"
            )
            if not be_w.empty:
                text += "; " + _breakeven_text(be_w)
            out.append(text + ".")
    return out


def _ppl(figures) -> str:
    """ "6.42 (Wanda), 6.51 (SparseGPT)", best first."""
    known = sorted((f for f in figures if f.known), key=lambda f: f.perplexity)
    return ", ".join(f"{f.perplexity:g} ({f.method})" for f in known)


def accuracy_sentences(verdict: pd.DataFrame, nm: tuple[int, int]) -> list[str]:
    """What the published accuracy of each model says (``llm_accuracy.yaml``): its
    dense perplexity, unstructured at the verdict's rate, N:M and head/channel
    pruning, with their sources; and whether the verdict could compare at equal
    accuracy (its ``equal_accuracy`` column)."""
    from simulator.study.llm_accuracy import llm_accuracy

    if verdict.empty:
        return []
    published = llm_accuracy()
    sparsity = 1 - 1 / float(verdict["nonstructured_rate"].iloc[0])
    pattern = f"{nm[0]}:{nm[1]}"
    out = []
    for model in dict.fromkeys(_split(n)[0] for n in verdict["network"]):
        acc = published.get(model)
        rows = verdict[[_split(n)[0] == model for n in verdict["network"]]]
        status = str(rows["equal_accuracy"].iloc[0]) if "equal_accuracy" in rows else ""
        if acc is None:
            out.append(f"{model}: no published accuracy in the accuracy file ({status}).")
            continue
        parts = []
        for seq in sorted({f.seq_len for f in acc.figures if f.known and f.seq_len}):
            at = [f for f in acc.figures if f.known and f.seq_len == seq]
            kinds = {
                "dense": [f for f in at if f.kind == "dense"],
                f"{sparsity:.0%} unstructured": [
                    f
                    for f in at
                    if f.kind == "unstructured" and math.isclose(f.sparsity or 0, sparsity)
                ],
                pattern: [f for f in at if f.kind == "nm" and f.pattern == pattern],
            }
            text = "; ".join(
                f"{k} {(f'{fs[0].perplexity:g}' if k == 'dense' else _ppl(fs))}"
                for k, fs in kinds.items()
                if fs
            )
            for f in (f for f in at if f.kind == "structured"):
                rate = f" at rate {f.published_rate:.3g}x" if f.published_rate else ""
                text += f"{'; ' if text else ''}structured ({f.method}){rate} {f.perplexity:g}"
            urls = ", ".join(dict.fromkeys(f.url for f in at if f.url))
            parts.append(f"at {seq} tokens: {text} ({urls})")
        verdict_text = (
            "compared at equal accuracy in the verdict (eq. acc.)"
            if status == "compared"
            else f"not compared at equal accuracy: {status}"
        )
        out.append(
            f"Published accuracy of {model} ({acc.metric}), {'; '.join(parts)}: {verdict_text}."
        )
    return out


def where_table(verdict: pd.DataFrame) -> Table:
    """Speedup over dense at the verdict's rate by platform (rows) and workload (columns),
    bold where it wins beyond the margin."""
    networks = list(dict.fromkeys(verdict["network"]))
    rows = []
    for p, g in verdict.groupby("platform", sort=False):
        by = dict(
            zip(
                g["network"],
                zip(g["speedup_vs_dense"], g["beats_dense_latency"], strict=True),
                strict=True,
            )
        )
        cells = []
        for n in networks:
            if n not in by:
                cells.append("-")
                continue
            x, win = by[n]
            cells.append(f"**{x:.2f}**" if win else f"{x:.2f}")
        rows.append((p, *cells))
    return Table(
        headers=("platform", *(n.split(" ", 1)[1] for n in networks)),
        rows=tuple(rows),
        align_right=(False, *([True] * len(networks))),
    )


def llm_report_blocks(result, plots: Mapping[str, Sequence[Path]]) -> list[Block]:
    """The LLM study's report: its own title, answer and assumptions, then the CNN
    study's verdict, evidence and appendix over the workloads."""
    c = result.config
    t = result.tables
    v = t["verdict"]
    sentences = answer_sentences(v, t["compute_breakeven"], t["structured_vs_nonstructured"])
    blocks_sim = blocks_note(v)
    head: list[Block] = [
        Heading(TITLE, 1),
        Paragraph(
            f"{len(c.models)} model(s) ({', '.join(c.models)}), phases "
            f"{', '.join(c.phases)} (prefill of {c.seq_len} tokens, decode at context "
            f"{c.context}), batch {', '.join(map(str, c.batches))}, on "
            f"{len(result.platforms)} platforms ({', '.join(result.platforms)}). "
            f"Non-structured pruning at {', '.join(f'{r:.3g}x' for r in sorted(c.rates))} "
            f"(the verdict at {c.verdict_rate:g}x; the break-even searched up to "
            f"{max(c.sweep_rates):g}x), {c.nm[0]}:{c.nm[1]} and structured "
            f"pruning of attention heads (whole KV groups) and MLP channels at the same "
            f"rates, all at equal weight-only quantization: weights at "
            f"{', '.join(map(str, c.weight_bits))} bits{_groups(c)}, activations at "
            f"{c.activation_bits} bits, the KV cache at {c.kv_bits or c.activation_bits} "
            f"bits (accelerators run the weight widths they have; the verdict at 8-bit "
            f"weights where a platform runs them); {blocks_sim}."
        ),
        Heading("The answer"),
    ]
    head += [Paragraph(s) for s in sentences]
    head += [Paragraph(s) for s in accuracy_sentences(v, c.nm)]
    if len(v):
        head += [
            Heading("Where: speedup over dense at the verdict's rate", 3),
            Paragraph(f"Bold: faster than dense by more than {pct(float(v['margin'].iloc[0]))}."),
            where_table(v),
        ]
    rest = report_blocks(result, plots)
    # the CNN report's title, summary and its own answer give way to the above; its
    # verdict, evidence and appendix follow (assumptions replaced)
    start = next(
        (
            i
            for i, b in enumerate(rest)
            if isinstance(b, Heading) and b.text == "Verdict by platform"
        ),
        len(rest),
    )
    body = rest[start:]
    if body and isinstance(body[-1], Paragraph):
        body[-1] = Paragraph(assumptions(result))
    return head + body


def _groups(c) -> str:
    """How weights below 8 bits carry their scales: ", those below 8 bits with a
    16-bit scale per 128 inputs", or nothing without groups."""
    if not c.group_size or min(c.weight_bits) >= 8:
        return ""
    return f" (below 8 bits with a {c.scale_bits}-bit scale per {c.group_size} inputs)"


def kernels_note(result) -> str:
    """Which sparse kernels of the CPU and GPU profiles ran, and which none of the
    study's widths reached (a kernel that lists the widths it runs), from the tables."""
    from simulator.hwconfig import load_platform

    t = result.tables["structured_vs_nonstructured"]
    c = result.config
    ran = set(t["nonstructured_engine"]) | set(t["nm_engine"]) if len(t) else set()
    used, unused = [], []
    for name in result.platforms:
        p = load_platform(name)
        if p.platform_class not in ("cpu", "gpu") or p.roofline is None:
            continue
        for k in p.roofline.kernels:
            label = f"{k.name} ({'2:4' if k.format == 'nm' else 'CSR'})"
            if any(e.startswith(k.name + " ") for e in ran):
                used.append(f"{name} {label}")
            elif not any(k.runs_widths(wb, c.activation_bits) for wb in c.weight_widths(p)):
                widths = "/".join(map(str, k.weight_bits or ())) or "any"
                acts = "/".join(map(str, k.activation_bits or ())) or "any"
                unused.append(f"{name} {k.name} (weights {widths}, activations {acts} bits)")
    out = ""
    if used:
        out += f"The CPU and GPU rows ran the sparse kernels {', '.join(used)}. "
    if unused:
        out += (
            "Kernels in the profiles that run none of the study's widths, so no row "
            f"stands for them: {', '.join(unused)}. "
        )
    return out


def assumptions(result) -> str:
    """The report's assumptions, with the kernels behind its CPU and GPU rows."""
    return ASSUMPTIONS_HEAD + kernels_note(result) + ASSUMPTIONS_TAIL


ASSUMPTIONS_HEAD = (
    "Non-structured masks are i.i.d. random at the same density in every layer; N:M "
    "masks keep N of every M weights along the reduction axis, run on the platform's "
    "N:M unit where it has one and as a sparse mask elsewhere; structured pruning "
    "removes whole KV groups of attention (with their query heads, o_proj columns and "
    "share of the attention products and KV cache) and whole MLP channels (rows of "
    "gate/up, columns of down), at the same fraction in every block. Only the first "
    "blocks of each model are simulated and the totals scaled by the block count "
    "(equal to a run of every block on the GPU and CPU rooflines; within a few per cent "
    "on EIE, which keeps weights on chip; `--blocks 0` simulates every block); the LM "
    "head and embeddings are left out. Each platform's sparse engines are the ones its "
    "profile names for the layer's widths. "
)
ASSUMPTIONS_TAIL = (
    "Latency is the largest of the compute, DRAM and SRAM bounds per "
    "layer; energy adds memory traffic, MACs, index decoding and static power. "
    "Structured pruning is set against non-structured pruning at equal accuracy only "
    "where a published head/channel pruning of the same model is at least as accurate, "
    "in the same metric at the same sequence length, as the best published unstructured "
    "result at the verdict's rate (`simulator/study/llm_accuracy.yaml`, every figure "
    "with its source); elsewhere at the same rate only. Hardware figures and their sources "
    "are in the profiles (`hwconfigs/`). Every number behind this report is in "
    "`tables/` as CSV and JSON."
)
