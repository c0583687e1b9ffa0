"""The study's report as a document (:mod:`simulator.document`): the answer per
platform family in sentences computed from the numbers, one compact verdict table,
the evidence, and an appendix with the long tables; and the verdict as terminal
tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from simulator.document import Block, Bullets, Figure, Heading, Paragraph, Table
from simulator.report import table
from simulator.study.accuracy import rate_at_equal_accuracy
from simulator.study.answer import (
    BENEFICIAL,
    DENSE_ONLY,
    FAMILIES,
    FamilyAnswer,
    Pair,
    family_answers,
)
from simulator.study.runner import StudyResult
from simulator.study.verdict import matched_at_most

TITLE = "Is non-structured pruning beneficial on any platform?"

VERDICT_HEADERS = [
    "network",
    "platform",
    "bits",
    "rate",
    "speedup",
    "energy",
    "> dense",
    "vs struct.",
    "matching",
    "eq. acc.",
]
"""Short headers of the terminal verdict table (explained in its title)."""

VERDICT_LONG_HEADERS = [
    "network",
    "platform",
    "bits",
    "rate",
    "speedup",
    "energy ratio",
    "beats dense (lat/energy)",
    "vs structured, same rate (lat/energy)",
    "structured rate that matches (lat/energy)",
    "vs structured, equal accuracy (lat/energy)",
]

ENGINE_HEADERS = ["platform", "non-structured engine", "structured engine"]
EQUAL_ACCURACY_HEADERS = ["network", "structured rate", "structure", "accuracy", "source"]

FAMILY_NAMES = dict(FAMILIES)

STORAGE_HEADLINE_BITS = ((8, 4), (4, 4), (8, 8))
"""Weight and index widths the answer's storage sentence prefers, in order."""


def rate_text(x: float) -> str:
    """A pruning rate: ``36x``, or ``never`` for infinity."""
    return "never" if not math.isfinite(x) else f"{x:.3g}x"


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def pct(margin: float) -> str:
    return f"{100 * margin:g} %"


def _ratios(lat: float, en: float, wins: tuple) -> str:
    """Two cost ratios, non-structured over structured, a ``*`` on each that is a win
    by more than the margin."""
    return "/".join(f"{x:.3g}x" + ("*" if w else "") for x, w in zip((lat, en), wins, strict=True))


def verdict_rows(verdict: pd.DataFrame) -> list[list]:
    """Rows of the long verdict table (terminal and appendix); a structured rate that
    matches at the mildest structured pruning searched shows as ``<=`` that rate;
    ratios against structured pruning carry a ``*`` where non-structured wins by more
    than the margin."""
    rows = []
    for _, v in verdict.iterrows():
        match = [v["structured_rate_matching_latency"], v["structured_rate_matching_energy"]]
        start = v["structured_rate_searched_from"]
        shown = [("<=" if matched_at_most(m, start) else "") + rate_text(m) for m in match]
        same = _ratios(
            v["latency_vs_structured_same_rate"],
            v["energy_vs_structured_same_rate"],
            (v["beats_structured_latency"], v["beats_structured_energy"]),
        )
        status = v["equal_accuracy"]
        if status == "compared":
            equal = _ratios(
                v["latency_vs_structured_equal_accuracy"],
                v["energy_vs_structured_equal_accuracy"],
                (
                    v["beats_structured_at_equal_accuracy_latency"],
                    v["beats_structured_at_equal_accuracy_energy"],
                ),
            )
        else:
            equal = "beyond grid" if status == "beyond grid" else "-"
        rows.append(
            [
                v["network"],
                v["platform"],
                int(v["weight_bits"]),
                rate_text(v["nonstructured_rate"]),
                float(v["speedup_vs_dense"]),
                float(v["energy_ratio_vs_dense"]),
                f"{_yes(v['beats_dense_latency'])}/{_yes(v['beats_dense_energy'])}",
                same,
                "/".join(shown),
                equal,
            ]
        )
    return rows


def engine_rows(verdict: pd.DataFrame) -> list[list]:
    """Per platform, the engines behind its verdict rows: the one that carried most of
    the non-structured run's latency and the structured run's (several, joined by
    ``;``, where networks differ)."""
    rows = []
    for platform, g in verdict.groupby("platform", sort=False):
        rows.append(
            [
                platform,
                "; ".join(dict.fromkeys(g["nonstructured_engine"])),
                "; ".join(dict.fromkeys(g["structured_engine"])),
            ]
        )
    return rows


def equal_accuracy_rows(verdict: pd.DataFrame) -> list[list]:
    """Per network, the structured rate published at equal accuracy and its source
    (:mod:`simulator.study.accuracy`)."""
    rows = []
    for network in dict.fromkeys(verdict["network"]):
        entry = rate_at_equal_accuracy(network)
        if entry is None or not entry.known:
            rows.append([network, "unknown", entry.structure if entry else "", "", ""])
            continue
        loss = entry.accuracy_loss
        acc = f"{'-' if loss > 0 else '+'}{abs(loss):g} {entry.metric}, {entry.dataset}"
        rows.append([network, rate_text(entry.rate), entry.structure, acc, entry.source])
    return rows


def _verdict_title(margin: float) -> str:
    win = f"{1 + margin:g}"
    return "\n".join(
        [
            f"Verdict at a margin of {pct(margin)}: non-structured pruning at each network's "
            "rate on each platform",
            f"> dense: faster / less energy than dense by more than the margin (speedup > {win}, "
            f"energy ratio < 1/{win})",
            "vs struct.: latency/energy over structured pruning at the same rate (* a win by "
            "more than the margin)",
            "matching: the structured rate that matches it; eq. acc.: latency/energy over "
            "structured pruning at",
            "equal accuracy, at the structured rate published without loss (next table; - "
            "where none is known)",
        ]
    )


def verdict_table(result: StudyResult) -> str:
    """The verdict as terminal tables: the verdict, the published structured rates it
    compares with at equal accuracy, and the engines behind each platform's rows."""
    v = result.tables["verdict"]
    margin = float(v["margin"].iloc[0]) if len(v) else result.config.margin
    return "\n\n".join(
        [
            table(
                verdict_rows(v),
                VERDICT_HEADERS,
                title=_verdict_title(margin),
                digits=[0, 0, 0, 0, 3, 3, 0, 0, 0, 0],
            ),
            table(
                equal_accuracy_rows(v),
                EQUAL_ACCURACY_HEADERS,
                title="Structured pruning at equal accuracy: the rate a published work "
                "reached without accuracy loss (or the loss shown)",
            ),
            table(engine_rows(v), ENGINE_HEADERS, title="Engines behind the verdict"),
        ]
    )


# --- the answer ------------------------------------------------------------------------


def _x(x: float) -> str:
    return f"{x:.3g}x"


def _span(lo: float, hi: float) -> str:
    return _x(lo) if f"{lo:.3g}" == f"{hi:.3g}" else f"{lo:.3g}-{hi:.3g}x"


def _pairs_text(pairs: Sequence[Pair], show: int = 4, what: str = "structured") -> str:
    """A few pairs with their ratios, ``and N more``."""

    def one(p: Pair) -> str:
        if what == "dense":
            return f"{p.network} on {p.platform} {_x(p.latency)}"
        return (
            f"{p.network} on {p.platform} ({_x(p.latency)} the latency, {_x(p.energy)} the energy)"
        )

    text = ", ".join(one(p) for p in pairs[:show])
    return text + (f", and {len(pairs) - show} more" if len(pairs) > show else "")


def family_sentence(a: FamilyAnswer) -> str:
    """A family's answer in a few sentences, from its counts."""
    name = FAMILY_NAMES.get(a.family, a.family)
    head = {
        BENEFICIAL: f"yes, in {len(a.structured)} of {a.pairs} pairs",
        DENSE_ONLY: "against dense only",
    }.get(a.answer, "no")
    out = [f"**{name} ({', '.join(a.platforms)}): {head}.**"]
    lo, hi = a.speedup_range
    if a.dense:
        out.append(
            f"Non-structured pruning is faster than dense in {a.dense_latency} of {a.pairs} "
            f"network/platform pairs and uses less energy in {a.dense_energy} "
            f"(speedups {_span(lo, hi)}; best: {_pairs_text(a.dense, 3, 'dense')})."
        )
    else:
        out.append(
            f"Non-structured pruning beats dense in none of its {a.pairs} pairs "
            f"(speedups {_span(lo, hi)})."
        )
    if a.no_speedup:
        out.append(
            f"On {', '.join(a.no_speedup)} it gains nothing at all (speedup 1x): "
            "those engines compute the pruned weights' zeros."
        )
    if a.structured:
        out.append(
            f"It beats structured pruning in {len(a.structured)} of {a.pairs} pairs: "
            f"{_pairs_text(a.structured)}."
        )
    else:
        slo, shi = a.same_rate_latency_range
        out.append(
            "It never beats structured pruning: at the same rate its latency is "
            f"{_span(slo, shi)} structured pruning's."
        )
    counted = []
    if a.equal_compared:
        counted.append(f"{a.equal_compared} compared at equal accuracy")
    if a.structured_lost:
        counted.append(f"{a.structured_lost} of them lost")
    if a.undecided:
        counted.append(
            f"{a.undecided} undecided (no published structured rate at equal accuracy"
            + (", or one past the rates computed" if a.equal_beyond_grid else "")
            + ", and no win at the same rate)"
        )
    if counted:
        out.append(f"Of the {a.pairs} pairs: {'; '.join(counted)}.")
    return " ".join(out)


def overall_sentence(answers: Sequence[FamilyAnswer]) -> str:
    """One sentence over every family: where non-structured pruning beats structured
    pruning, where only dense, where neither."""
    margin = answers[0].margin if answers else 0.0
    wins = sorted({p.platform for a in answers for p in a.structured})
    dense_only = [a for a in answers if a.answer == DENSE_ONLY]
    neither = [a for a in answers if not a.dense]
    parts = []
    if wins:
        parts.append(
            "non-structured pruning beats structured pruning (at equal accuracy, or at the "
            "same rate) only on " + ", ".join(wins)
        )
    else:
        parts.append("non-structured pruning beats structured pruning on no platform")
    if dense_only:
        parts.append(
            "on "
            + ", ".join(FAMILY_NAMES.get(a.family, a.family) for a in dense_only)
            + " it beats dense but not structured pruning"
        )
    if neither:
        parts.append(
            "on "
            + ", ".join(FAMILY_NAMES.get(a.family, a.family) for a in neither)
            + " it beats neither"
        )
    return (
        f"**In short:** at a margin of {pct(margin)}, " + "; ".join(parts) + ". "
        "Ma et al. found it beneficial on no platform; the pairs below say where this "
        "study agrees and where it does not."
    )


# --- storage ---------------------------------------------------------------------------


def storage_summary(breakeven: pd.DataFrame) -> pd.DataFrame:
    """Per weight width, index width and structured rate (whole networks): how much
    sparser a non-structured mask must be than the structured one to take as few
    bits, as the smallest, median and largest ratio over networks (infinity where
    no density does, counted in ``never`` and named in ``never_networks``; the median
    counts them as the largest)."""
    net = breakeven[breakeven["layer"] == "(network)"]
    rows = []
    keys = ["weight_bits", "index_bits", "structure", "structured_rate"]
    for key, g in net.groupby(keys, sort=True):
        r = g["ratio"].astype(float)
        never = g[~r.apply(math.isfinite)]
        rows.append(
            dict(
                zip(keys, key, strict=True),
                networks=len(g),
                ratio_min=float(r.min()),
                ratio_median=float(r.median()),
                ratio_max=float(r.max()),
                never=len(never),
                never_networks=", ".join(never["network"]),
            )
        )
    return pd.DataFrame(rows)


def _storage_table(summary: pd.DataFrame) -> Table:
    """The storage summary with one row per weight and index width, one column per
    structured pruning and rate."""
    cols = list(dict.fromkeys(zip(summary["structure"], summary["structured_rate"], strict=True)))
    rows = []
    for (wb, ib), g in summary.groupby(["weight_bits", "index_bits"], sort=True):
        cells: list = [int(wb), int(ib)]
        for s, r in cols:
            x = g[(g["structure"] == s) & (g["structured_rate"] == r)]
            if x.empty:
                cells.append("-")
                continue
            x = x.iloc[0]
            lo, hi = x["ratio_min"], x["ratio_max"]
            text = _span(lo, hi) if math.isfinite(hi) else f"{_x(lo)} - never"
            if x["never"]:
                text += f" ({x['never_networks']})"
            cells.append(text)
        rows.append(tuple(cells))
    return Table(
        headers=("weight bits", "index bits", *(f"{s} {_x(r)}" for s, r in cols)),
        rows=tuple(rows),
        align_right=(True,) * (2 + len(cols)),
    )


def storage_sentence(summary: pd.DataFrame) -> str | None:
    """The storage answer at one pair of widths (:data:`STORAGE_HEADLINE_BITS`, first
    present), "never" rows counted and explained."""
    if summary.empty:
        return None
    have = {
        (int(w), int(i)) for w, i in zip(summary["weight_bits"], summary["index_bits"], strict=True)
    }
    wb, ib = next((b for b in STORAGE_HEADLINE_BITS if b in have), sorted(have)[-1])
    s = summary[(summary["weight_bits"] == wb) & (summary["index_bits"] == ib)]
    parts, never = [], []
    for _, r in s.iterrows():
        finite = r["ratio_max"] if math.isfinite(r["ratio_max"]) else None
        span = (
            _span(r["ratio_min"], finite)
            if finite is not None
            else (f"{_x(r['ratio_min'])} or more" if r["never"] < r["networks"] else "never")
        )
        parts.append(f"{span} sparser than {_x(r['structured_rate'])} {r['structure']} pruning")
        if r["never"]:
            never.append(
                f"{r['never']} of {r['networks']} networks at {_x(r['structured_rate'])} "
                f"({r['never_networks']})"
            )
    listed = ", ".join(parts[:-1]) + (", and " if len(parts) > 1 else "") + parts[-1]
    text = (
        f"**Storage ({wb}-bit weights, {ib}-bit relative indices):** to take as few bits, "
        f"a non-structured mask must be {listed} (over networks); the index alone "
        f"accounts for {1 + ib / wb:.3g}x, pointers and the filler entries that bridge "
        "long gaps for the rest."
    )
    if never:
        text += (
            " No density is enough for "
            + "; ".join(never)
            + ": there, the pointers and fillers of even the sparsest mask take more bits "
            "than structured pruning does."
        )
    return text


# --- the document ------------------------------------------------------------------------


def _matrix(verdict: pd.DataFrame, value: str, win: str | None, networks: Sequence[str]) -> Table:
    """Platforms (by family) down, networks across, ``value`` in each cell; wins
    (column ``win`` true) in bold."""
    order = {f: i for i, (f, _) in enumerate(FAMILIES)}
    v = verdict.assign(_order=verdict["platform_class"].map(order).fillna(len(order)))
    v = v.sort_values(["_order", "platform"], kind="stable")
    rows = []
    for platform, g in v.groupby("platform", sort=False):
        cells: list = [
            FAMILY_NAMES.get(g["platform_class"].iloc[0], g["platform_class"].iloc[0]),
            platform,
        ]
        by = {n: r for n, (_, r) in zip(g["network"], g.iterrows(), strict=True)}
        for n in networks:
            r = by.get(n)
            if r is None or not math.isfinite(float(r[value])):
                cells.append("-")
                continue
            text = f"{float(r[value]):.3g}"
            cells.append(f"**{text}**" if win is not None and r[win] is True else text)
        rows.append(tuple(cells))
    return Table(
        headers=("family", "platform", *networks),
        rows=tuple(rows),
        align_right=(False, False, *[True] * len(networks)),
    )


def _compact_rows(answers: Sequence[FamilyAnswer], verdict: pd.DataFrame) -> list[tuple]:
    """One row per platform: its engine, its speedups over dense, its wins."""
    rows = []
    for a in answers:
        for platform in a.platforms:
            g = verdict[verdict["platform"] == platform]
            n = len(g)
            eq = g[g["equal_accuracy"] == "compared"]
            mine = [p for p in a.structured if p.platform == platform]
            rows.append(
                (
                    FAMILY_NAMES.get(a.family, a.family),
                    platform,
                    "; ".join(dict.fromkeys(g["nonstructured_engine"])),
                    _span(g["speedup_vs_dense"].min(), g["speedup_vs_dense"].max()),
                    f"{g['beats_dense_latency'].sum():d}/{g['beats_dense_energy'].sum():d} of {n}",
                    _span(
                        g["latency_vs_structured_same_rate"].min(),
                        g["latency_vs_structured_same_rate"].max(),
                    ),
                    f"{len(mine)} of {n}",
                    f"{len(eq)}",
                    ", ".join(p.network for p in mine) or "-",
                )
            )
    return rows


COMPACT_HEADERS = (
    "family",
    "platform",
    "non-structured engine",
    "speedup over dense",
    "beats dense (lat/energy)",
    "latency / structured's, same rate",
    "beats structured",
    "compared at equal accuracy",
    "where it beats structured",
)


def _long_verdict(verdict: pd.DataFrame) -> Table:
    return Table(
        headers=tuple(VERDICT_LONG_HEADERS),
        rows=tuple(tuple(r) for r in verdict_rows(verdict)),
        align_right=(False, False, True, True, True, True, False, False, False, False),
    )


def _frame_table(frame: pd.DataFrame, columns: Sequence[tuple[str, object, bool]]) -> Table:
    """A :class:`Table` of a DataFrame: ``columns`` gives each header, a column name or
    a function of the row, and whether it is right-aligned."""
    rows = tuple(
        tuple(get(r) if callable(get) else r[get] for _, get, _ in columns)
        for _, r in frame.iterrows()
    )
    return Table(
        headers=tuple(h for h, _, _ in columns),
        rows=rows,
        align_right=tuple(a for _, _, a in columns),
    )


def _equal_accuracy_table(verdict: pd.DataFrame) -> Table:
    """:func:`equal_accuracy_rows` with each entry's citation and note."""
    rows = []
    for row in equal_accuracy_rows(verdict):
        entry = rate_at_equal_accuracy(row[0])
        text = "" if entry is None else " ".join(entry.note.split())
        if entry is not None and entry.citation:
            text = f"{' '.join(entry.citation.split())}. {text}"
        rows.append((*row, text))
    return Table(headers=(*EQUAL_ACCURACY_HEADERS, "note"), rows=tuple(rows))


def _margin_text(margin: float) -> str:
    win = f"{1 + margin:g}"
    return (
        f"A win counts only beyond a margin of {pct(margin)} (`--margin`): non-structured "
        f"pruning beats dense in latency when its speedup exceeds {win}, in energy when "
        f"its energy ratio is below 1/{win} = {1 / (1 + margin):.4g}; it beats structured "
        f"pruning when its latency or energy ratio to it is below 1/{win} (marked * in "
        f"the appendix). One rule for both: the loser costs more than {win} times what "
        "the winner costs, whichever way the ratio is taken."
    )


EQUAL_ACCURACY_TEXT = (
    "Ma et al. compare the two kinds of pruning at the same accuracy: each at the "
    "highest rate it reaches without accuracy loss. The non-structured rates here are "
    "such rates (Ma et al.'s where published); the structured rate of each network is "
    "the one a published work reached without loss, or with the small loss shown "
    "(table below, with sources; `simulator/study/accuracy_rates.yaml`), and structured "
    "pruning's latency and energy there are read off the structured curve computed here "
    "(log-log interpolation between the rates its masks reach; 'beyond grid' where the "
    "rate lies past them). A win at the same rate is a win at equal accuracy too: "
    "structured pruning loses accuracy sooner, so at equal accuracy it prunes less. "
    "Published rates come from other training recipes and datasets (noted per entry), "
    "so this is the paper's comparison as far as the literature allows, not a "
    "measurement of accuracy here."
)


def _assumptions(cascade: bool) -> str:
    return (
        "Masks are i.i.d. random (non-structured) or whole filters chosen at random "
        "(structured), at the same density in every layer; real pruned masks are "
        "less uniform. Storage break-evens use expected sizes of i.i.d. masks. Latency is "
        "the largest of the compute, DRAM and SRAM bounds per layer; energy adds memory "
        "traffic, MACs, index decoding and static power. "
        + (
            "Filter pruning cascades through each network's graph: a removed filter also "
            "removes the input channels of every layer that reads it (across a residual "
            "add, only channels removed on every branch); every layer keeps more filters, "
            "by one common factor, so that each network keeps 1/R of its weights at rate "
            "R (the rate reached, `effective_rate` in the tables, is the nearest whole "
            "filters allow). "
            if cascade
            else "Structured pruning shrinks each layer on its own (a pruned filter does "
            "not shrink the next layer's input here). "
        )
        + "Hardware figures and their sources are in the profiles (`hwconfigs/`); "
        "`prunesim validate` holds them against published measurements (VALIDATION.md), "
        "and a figure no measurement anchors is an estimate that its profile says how it "
        "was derived. Every number behind this report is in `tables/` as CSV and JSON."
    )


def network_rates(verdict: pd.DataFrame) -> list[tuple[str, float]]:
    """(network, non-structured rate) as the verdict used them."""
    if verdict.empty:
        return []
    return list(verdict.groupby("network", sort=False)["nonstructured_rate"].first().items())


def report_blocks(result, plots: Mapping[str, Sequence[Path]]) -> list[Block]:
    """The report of a :class:`~simulator.study.StudyResult` whose ``plots`` (files by
    group: ``compute``, ``storage``, ``energy``) are written."""
    c = result.config
    t = result.tables
    v = t["verdict"]
    margin = float(v["margin"].iloc[0]) if len(v) else c.margin
    grid = ", ".join(f"{r:g}" for r in c.sweep_rates)
    networks = list(result.networks)
    answers = family_answers(v)
    storage = (
        storage_summary(t["storage_breakeven"])
        if not t["storage_breakeven"].empty
        else pd.DataFrame()
    )
    rates = ", ".join(f"{n} at {r:g}x" for n, r in network_rates(v))
    b: list[Block] = [
        Heading(TITLE, 1),
        Paragraph(
            f"{len(networks)} networks ({rates}) "
            f"on {len(result.platforms)} platforms, non-structured pruning against dense "
            f"execution and against structured ({', '.join(c.structures)}) pruning, at a "
            f"margin of {pct(margin)}. Weight bits {', '.join(map(str, c.weight_bits))}; "
            f"index bits {', '.join(map(str, c.index_bits))}; the verdict takes 8-bit "
            "weights where a platform runs them, else its native width."
        ),
        Heading("The answer"),
    ]
    if answers:
        b.append(Paragraph(overall_sentence(answers)))
        items = [family_sentence(a) for a in answers]
        if (s := storage_sentence(storage)) is not None:
            items.append(s)
        b.append(Bullets(tuple(items)))
        b += [
            Heading("Verdict by platform"),
            Paragraph(
                "Per platform, over its networks: the speedups of non-structured pruning "
                "over dense, how many pairs beat dense (latency/energy), its latency over "
                "structured pruning's at the same rate, and how many pairs beat structured "
                "pruning (at equal accuracy, or at the same rate). Every pair is in the "
                "appendix and in `tables/verdict.csv`."
            ),
            Table(
                headers=COMPACT_HEADERS,
                rows=tuple(_compact_rows(answers, v)),
                align_right=(False, False, False, True, True, True, True, True, False),
            ),
            Heading("Evidence"),
            Heading("Speedup over dense at each network's rate", 3),
            Paragraph(
                f"Latency of dense execution over non-structured execution on the same "
                f"platform; bold: faster by more than {pct(margin)}."
            ),
            _matrix(v, "speedup_vs_dense", "beats_dense_latency", networks),
            Heading("Latency against structured pruning at the same rate", 3),
            Paragraph(
                "Non-structured latency over structured latency, both keeping as many "
                "weights (below 1: non-structured is faster; bold: by more than the margin)."
            ),
            _matrix(v, "latency_vs_structured_same_rate", "beats_structured_latency", networks),
        ]
        eq_nets = [
            n for n in networks if (v[v["network"] == n]["equal_accuracy"] == "compared").any()
        ]
        if eq_nets:
            b += [
                Heading("Latency against structured pruning at equal accuracy", 3),
                Paragraph(EQUAL_ACCURACY_TEXT),
                _matrix(
                    v,
                    "latency_vs_structured_equal_accuracy",
                    "beats_structured_at_equal_accuracy_latency",
                    eq_nets,
                ),
                _equal_accuracy_table(v),
            ]
        b += [
            Heading("Energy against dense at each network's rate", 3),
            Paragraph("Non-structured energy over dense energy (bold: a win beyond the margin)."),
            _matrix(v, "energy_ratio_vs_dense", "beats_dense_energy", networks),
        ]
    if not storage.empty:
        b += [
            Heading("Storage", 3),
            Paragraph(
                "How many times sparser a non-structured mask (relative-index CSR, "
                "fillers and pointers counted) must be than structured pruning at each "
                "rate to take as few bits, whole networks: smallest to largest over "
                "networks; 'never': no density does (the networks are named). Per "
                "network and per layer in `tables/storage_breakeven.csv`."
            ),
            _storage_table(storage),
        ]
    real = t["real_vs_iid"]
    if not real.empty:
        comp, stor = real[real["what"] == "compute"], real[real["what"] != "compute"]
        b += [
            Heading("Real masks against i.i.d. masks of the same density", 3),
            Paragraph(
                "The checkpoint's own masks against random masks with the same density in "
                "every layer: on each platform (speedup and energy ratio against dense) and "
                "in storage (relative-index CSR)."
            ),
            _frame_table(
                comp,
                [
                    ("network", "network", False),
                    ("platform", "platform", False),
                    ("weight bits", lambda r: int(r["weight_bits"]), True),
                    ("rate", lambda r: rate_text(r["rate"]), True),
                    ("speedup, real", lambda r: float(r["real_speedup"]), True),
                    ("speedup, i.i.d.", lambda r: float(r["iid_speedup"]), True),
                    ("energy ratio, real", lambda r: float(r["real_energy_ratio"]), True),
                    ("energy ratio, i.i.d.", lambda r: float(r["iid_energy_ratio"]), True),
                ],
            ),
            _frame_table(
                stor,
                [
                    ("network", "network", False),
                    ("weight bits", lambda r: int(r["weight_bits"]), True),
                    ("index bits", lambda r: int(r["index_bits"]), True),
                    ("bits, real", lambda r: f"{int(r['real_bits']):,}", True),
                    ("bits, i.i.d.", lambda r: f"{int(r['iid_bits']):,}", True),
                    ("real / i.i.d.", lambda r: r["real_bits"] / r["iid_bits"], True),
                ],
            ),
        ]
    for group, title in (
        ("compute", "Speedup and energy ratio against the rate, per platform"),
        ("energy", "Energy by component, per network"),
        ("storage", "Storage against the rate, per network"),
    ):
        if plots.get(group):
            b.append(Heading(title, 3))
            b += [Figure(Path(p), Path(p).stem.replace("_", " ")) for p in plots[group]]
    b += [Heading("Appendix")]
    if len(v):
        b += [
            Heading("A. Every network on every platform", 3),
            Paragraph(
                "Speedup and energy ratio against dense; latency and energy against "
                "structured pruning at the same rate (below 1: non-structured is better); "
                "the structured rate that matches non-structured (a low number: a mild "
                "structured pruning is already as good; <= the mildest searched); latency "
                "and energy against structured pruning at equal accuracy. " + _margin_text(margin)
            ),
            _long_verdict(v),
            Paragraph(
                "Engines behind the verdict (the engine that carried most of each run's latency):"
            ),
            Table(headers=tuple(ENGINE_HEADERS), rows=tuple(tuple(r) for r in engine_rows(v))),
        ]
    ce = t["compute_breakeven"]
    if not ce.empty and len(v):
        ce = ce[ce["layer"] == "(network)"].merge(
            v[["network", "platform", "weight_bits"]], on=["network", "platform", "weight_bits"]
        )
        b += [
            Heading("B. Compute break-even", 3),
            Paragraph(
                "The non-structured rate at which sparse execution first beats dense, in "
                f"latency and in energy, whole network at the verdict's weight width "
                f"(searched over {grid}; 'never' if not within); every width and layer in "
                "`tables/compute_breakeven.csv`."
            ),
            _frame_table(
                ce,
                [
                    ("network", "network", False),
                    ("platform", "platform", False),
                    ("weight bits", lambda r: int(r["weight_bits"]), True),
                    ("latency break-even", lambda r: rate_text(r["latency_breakeven_rate"]), True),
                    ("energy break-even", lambda r: rate_text(r["energy_breakeven_rate"]), True),
                    ("best speedup", lambda r: float(r["best_speedup"]), True),
                    ("best energy ratio", lambda r: float(r["best_energy_ratio"]), True),
                ],
            ),
        ]
    b += [Heading("C. Assumptions", 3), Paragraph(_assumptions(c.cascade))]
    return b
