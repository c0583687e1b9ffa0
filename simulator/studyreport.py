"""Writing a study out: every table as CSV and JSON, the plots, and one Markdown
report that gathers them with a short reading; the terminal verdict table."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pandas as pd

from simulator.errors import ConfigError
from simulator.files import write_via
from simulator.report import table, write_csv, write_frame_json
from simulator.study import TABLES, StudyResult, check_out_dir, file_name
from simulator.study.runner import write_manifest
from simulator.studyparts import sha256_text

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

VERDICT_MD_HEADERS = [
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


def _rate(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:.3g}x"


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def _pct(margin: float) -> str:
    return f"{100 * margin:g} %"


def _ratios(lat: float, en: float, wins: tuple) -> str:
    """Two cost ratios, non-structured over structured, a ``*`` on each that is a win
    by more than the margin."""
    return "/".join(f"{x:.3g}x" + ("*" if w else "") for x, w in zip((lat, en), wins, strict=True))


def verdict_rows(verdict: pd.DataFrame) -> list[list]:
    """Rows of the verdict table (terminal and Markdown); a structured rate that
    matches at the mildest structured pruning searched shows as ``<=`` that rate;
    ratios against structured pruning carry a ``*`` where non-structured wins by more
    than the margin."""
    rows = []
    for _, v in verdict.iterrows():
        match = [v["structured_rate_matching_latency"], v["structured_rate_matching_energy"]]
        start = v["structured_rate_searched_from"]
        shown = [("<=" + _rate(m)) if m <= start else _rate(m) for m in match]
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
                _rate(v["nonstructured_rate"]),
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
    from simulator.study.accuracy import rate_at_equal_accuracy

    rows = []
    for network in dict.fromkeys(verdict["network"]):
        entry = rate_at_equal_accuracy(network)
        if entry is None or not entry.known:
            rows.append([network, "unknown", entry.structure if entry else "", "", ""])
            continue
        loss = entry.accuracy_loss
        acc = f"{'-' if loss > 0 else '+'}{abs(loss):g} {entry.metric}, {entry.dataset}"
        rows.append([network, _rate(entry.rate), entry.structure, acc, entry.source])
    return rows


def _verdict_title(margin: float) -> str:
    win = f"{1 + margin:g}"
    return "\n".join(
        [
            f"Verdict at a margin of {_pct(margin)}: non-structured pruning at each network's "
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


def _md_frame(frame: pd.DataFrame, columns: list[tuple[str, object]]) -> str:
    """A Markdown table of a DataFrame: ``columns`` pairs a header with a column name
    or a function of the row."""
    rows = [
        [get(r) if callable(get) else r[get] for _, get in columns] for _, r in frame.iterrows()
    ]
    return _md_table(rows, [h for h, _ in columns])


def _md_table(rows: list[list], headers: list[str]) -> str:
    def cell(x) -> str:
        if isinstance(x, float):
            return "never" if math.isinf(x) else f"{x:.3g}"
        return str(x)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _stems(names) -> dict[str, str]:
    """Each name as a file name; names that the safe form would merge (``net a`` and
    ``net_a``) get a short hash of the exact name, so that no plot replaces another."""
    names = list(dict.fromkeys(names))
    safe = [file_name(n) for n in names]
    return {
        n: f"{f}-{sha256_text(n)[:8]}" if safe.count(f) > 1 else f
        for n, f in zip(names, safe, strict=True)
    }


def write_tables(result: StudyResult) -> Path:
    """Write every table as CSV and JSON into ``tables/``; returns that folder."""
    check_out_dir(result.out_dir)
    folder = result.out_dir / "tables"
    for name in TABLES:
        frame = result.tables[name]
        write_via(folder / f"{name}.csv", lambda tmp, f=frame: write_csv(tmp, f))
        write_via(folder / f"{name}.json", lambda tmp, n=name, f=frame: write_frame_json(tmp, n, f))
    return folder


def write_study(result: StudyResult) -> Path:
    """Write tables (CSV, JSON), plots and ``report.md`` into the study's folder;
    returns the report's path. Each file is written under a temporary name and
    renamed into place."""
    out = result.out_dir
    write_manifest(out, result.config)  # first: a half-written folder is still claimed
    write_tables(result)
    plots = write_plots(result)
    report = out / "report.md"
    text = _markdown(result, plots)
    write_via(report, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return report


PLOT_INDEX = "digests.json"
"""The file in ``plots/`` that maps each figure's stem to the digest of what it was
drawn from (:func:`simulator.plots.figure_digest`). Not a hidden name: hidden names
are temporaries (:func:`simulator.files.temporary_name`)."""


def write_plots(result: StudyResult) -> dict[str, list[Path]]:
    """Draw the study's figures into ``plots/``, each as PNG and SVG under one stem
    (``compute_PLATFORM``, ``storage_NETWORK``, ``energy_NETWORK``); returns the PNG
    paths by group (``compute``, ``storage``, ``energy``), the SVG beside each.

    A figure is drawn only if its data, options or the plotting code changed since
    it was last written: :data:`PLOT_INDEX` holds the digest of each figure's
    inputs, entries of figures about to be redrawn are dropped from it before any
    drawing and the new ones written after, so an interrupted run redraws what it
    did not finish. A fully resumed study draws nothing. Files of figures no longer
    in the study (networks or platforms dropped) are removed."""
    from simulator import plots as figs

    t = result.tables
    folder = result.out_dir / "plots"
    sweep, breakeven = t["compute_sweep"], t["compute_breakeven"]
    platforms = sorted(sweep["platform"].unique())
    # the rows every compute figure selects from, once (the whole table is large)
    sweep = sweep[(sweep["kind"] == "sparse") & (sweep["layer"] == "(network)")]
    breakeven = breakeven[breakeven["layer"] == "(network)"]
    families = _platform_families(result)
    platform_stem, network_stem = _stems(platforms), _stems(result.networks)
    widths = tuple(sorted(int(w) for w in sweep["weight_bits"].unique()))
    ib = result.config.index_bits[0]
    jobs = []  # (group, stem, what the digest covers, how to draw it)
    for p in platforms:
        opts = {"networks": tuple(result.networks), "widths": widths, "family": families.get(p)}
        frames = figs.compute_data(sweep, breakeven, p)
        draw = functools.partial(_draw, "figure_compute", *frames, p, **opts)
        jobs.append(("compute", f"compute_{platform_stem[p]}", ("compute", frames, opts), draw))
    for n in result.networks:
        frames = (figs.storage_data(t["storage_curves"], n, ib),)
        draw = functools.partial(_draw, "figure_storage", frames[0], n, ib)
        jobs.append(("storage", f"storage_{network_stem[n]}", ("storage", frames, (n, ib)), draw))
        frame = figs.energy_data(t["energy_breakdown"], n)
        opts = {"families": {p: families.get(p) for p in sorted(set(frame["platform"]))}}
        draw = functools.partial(_draw, "figure_energy_breakdown", frame, n, **opts)
        jobs.append(("energy", f"energy_{network_stem[n]}", ("energy", (frame,), (n, opts)), draw))
    index_path = folder / PLOT_INDEX
    old = _read_plot_index(index_path)
    digests = {stem: figs.figure_digest(*what) for _, stem, what, _ in jobs}
    todo = [
        (stem, draw)
        for _, stem, _, draw in jobs
        if old.get(stem) != digests[stem]
        or not all((folder / f"{stem}.{fmt}").is_file() for fmt in figs.FORMATS)
    ]
    index = {s: d for s, d in old.items() if s in digests and s not in dict(todo)}
    if index != old:  # forget what is about to change before changing it
        _write_plot_index(index_path, index)
    for stem, draw in todo:
        figs.save_figure(draw(), folder / stem)
        index[stem] = digests[stem]
    if todo:
        _write_plot_index(index_path, index)
    keep = {f"{stem}.{fmt}" for stem in digests for fmt in figs.FORMATS}
    for fmt in figs.FORMATS:  # figures of networks or platforms no longer studied
        for stale in folder.glob(f"*.{fmt}"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)
    plots: dict[str, list[Path]] = {"compute": [], "storage": [], "energy": []}
    for group, stem, _, _ in jobs:
        plots[group].append(folder / f"{stem}.png")
    return plots


def _draw(name: str, *args, **kwargs):
    """Call :mod:`simulator.plots`' figure function ``name``: matplotlib is imported
    only when a figure is drawn."""
    from simulator import plots as figs

    return getattr(figs, name)(*args, **kwargs)


def _platform_families(result: StudyResult) -> dict[str, str]:
    """Each studied platform's class (cpu, gpu, fpga, asic), from its profile."""
    from simulator.hwconfig import load_platform

    out = {}
    for name in result.config.platform_names():
        try:
            p = load_platform(name)
        except ConfigError:
            continue
        out[p.name] = p.platform_class
    return out


def _read_plot_index(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str)}


def _write_plot_index(path: Path, index: dict[str, str]) -> None:
    text = json.dumps(dict(sorted(index.items())), indent=1) + "\n"
    write_via(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _reading(result: StudyResult) -> list[str]:
    """A few sentences computed from the numbers."""
    t = result.tables
    v = t["verdict"]
    n = len(v)
    lines = []
    if n:
        count = lambda col: int(v[col].eq(True).sum())  # noqa: E731
        wins = v[v["beats_dense_latency"].eq(True)]["platform"].unique()
        margin = _pct(float(v["margin"].iloc[0]))
        lines.append(
            f"Non-structured pruning at each network's rate is faster than dense by more "
            f"than the {margin} margin in {count('beats_dense_latency')} of {n} "
            f"network/platform pairs and uses less energy in {count('beats_dense_energy')}; "
            f"it is faster than structured pruning at the same rate in "
            f"{count('beats_structured_latency')} and uses less energy in "
            f"{count('beats_structured_energy')}. The pairs where it beats dense in latency "
            f"are on: {', '.join(sorted(wins)) or 'no platform'}."
        )
        eq = v[v["equal_accuracy"] == "compared"]
        if len(eq):
            nets = ", ".join(dict.fromkeys(eq["network"]))
            lines.append(
                f"At equal accuracy (structured pruning at the rate published without "
                f"accuracy loss, or with the small loss stated; known for {nets}), "
                f"non-structured pruning is faster by more than the margin in "
                f"{count('beats_structured_at_equal_accuracy_latency')} of {len(eq)} pairs "
                f"and uses less energy in {count('beats_structured_at_equal_accuracy_energy')}."
            )
    be = t["storage_breakeven"]
    if not be.empty:
        net = be[be["layer"] == "(network)"]
        for wb, ib in ((4, 4), (8, 4), (8, 8)):
            sel = net[(net["weight_bits"] == wb) & (net["index_bits"] == ib)]
            if sel.empty:
                continue
            finite = sel[sel["ratio"].apply(math.isfinite)]
            med = finite["ratio"].median() if len(finite) else math.inf
            lines.append(
                f"Storage, {wb}-bit weights and {ib}-bit indices: a non-structured mask must be "
                f"{med:.1f}x sparser than a structured one (median over networks and "
                f"structured rates) to take as few bits; the index alone accounts for "
                f"{1 + ib / wb:.2f}x, the filler entries and pointers for the rest."
            )
    return lines


def _network_rates(t) -> list[tuple[str, float]]:
    """(network, non-structured rate) as the verdict used them."""
    v = t["verdict"]
    if v.empty:
        return []
    return list(v.groupby("network", sort=False)["nonstructured_rate"].first().items())


def _md_escape(cell):
    """A cell with Markdown's emphasis marker escaped (``*`` marks a win)."""
    return cell.replace("*", "\\*") if isinstance(cell, str) else cell


def _md_equal_accuracy_rows(verdict: pd.DataFrame) -> list[list]:
    """:func:`equal_accuracy_rows` with each entry's citation and note."""
    from simulator.study.accuracy import rate_at_equal_accuracy

    rows = []
    for row in equal_accuracy_rows(verdict):
        entry = rate_at_equal_accuracy(row[0])
        text = "" if entry is None else " ".join(entry.note.split())
        if entry is not None and entry.citation:
            text = f"{' '.join(entry.citation.split())}. {text}"
        rows.append([*row, text.replace("|", "/")])
    return rows


def _markdown(result: StudyResult, plots: dict[str, list[Path]]) -> str:
    c = result.config
    t = result.tables
    out = result.out_dir
    rel = lambda p: p.relative_to(out).as_posix()  # noqa: E731
    grid = ", ".join(f"{r:g}" for r in c.sweep_rates)
    v = t["verdict"]
    margin = float(v["margin"].iloc[0]) if len(v) else c.margin
    parts = [
        "# Is non-structured pruning beneficial on any platform?",
        "",
        f"Networks: {', '.join(result.networks)}. Platforms: {', '.join(result.platforms)}. "
        f"Weight bits: {', '.join(map(str, c.weight_bits))}; index bits: "
        f"{', '.join(map(str, c.index_bits))}; structured pruning: {', '.join(c.structures)}. "
        f"Non-structured rates: "
        + ", ".join(f"{n} {r:g}x" for n, r in _network_rates(t))
        + f". Compute sweep over rates {grid}.",
        "",
        "## Reading",
        "",
        *[f"- {line}" for line in _reading(result)],
        "",
        f"## Verdict (margin {_pct(margin)})",
        "",
        "Non-structured pruning at each network's rate on each platform (at 8-bit weights "
        "where the platform runs them, else its native width): speedup and energy ratio "
        "against dense on the same platform; latency and energy against structured "
        "pruning at the same rate (below 1: non-structured is better); the structured "
        "rate that matches non-structured (a low number: a mild structured pruning is "
        "already as good); and latency and energy against structured pruning at equal "
        "accuracy. Structured rates here are the rates its masks reach (all "
        "weights over kept ones), so the same rate means as many kept weights.",
        "",
        f"A win counts only beyond a margin of {_pct(margin)} (`--margin`): non-structured "
        f"pruning beats dense in latency when its speedup exceeds {1 + margin:g}, in "
        f"energy when its energy ratio is below 1/{1 + margin:g} = {1 / (1 + margin):.4g}; "
        "it beats structured pruning when its latency or energy ratio to it is below "
        f"1/{1 + margin:g} (marked `*`). One rule for both: the loser costs more than "
        f"{1 + margin:g} times what the winner costs, whichever way the ratio is taken "
        "(an energy ratio below 1 minus the margin would ask a little more of energy "
        "than of speed).",
        "",
        "**Equal accuracy.** Ma et al. compare the two kinds of pruning at the same "
        "accuracy: each at the highest rate it reaches without accuracy loss. The "
        "non-structured rates above are such rates (Ma et al.'s where published); the "
        "structured rate of each network is the one a published work reached without "
        "loss, or with the small loss shown (table below, with sources; "
        "`simulator/study/accuracy_rates.yaml`), and structured pruning's latency and "
        "energy there are read off the structured curve computed here (log-log "
        "interpolation between the rates its masks reach; 'beyond grid' where the rate "
        "lies past them). A '-' marks a network with no verified published rate: it is "
        "compared at equal rate only. Published rates come from other training recipes "
        "and datasets (noted per entry), so this is the paper's comparison as far as "
        "the literature allows, not a measurement of accuracy here.",
        "",
        _md_table(
            [[_md_escape(c) for c in r] for r in verdict_rows(t["verdict"])], VERDICT_MD_HEADERS
        ),
        "",
        "Structured pruning at equal accuracy (`structured_rate_no_loss` in the verdict):",
        "",
        _md_table(_md_equal_accuracy_rows(t["verdict"]), [*EQUAL_ACCURACY_HEADERS, "note"]),
        "",
        "Engines behind the verdict (the engine that carried most of each run's latency):",
        "",
        _md_table(engine_rows(t["verdict"]), ENGINE_HEADERS),
        "",
        "## Storage break-even",
        "",
        "Non-structured rate (relative-index CSR, fillers and pointers counted) whose storage "
        "equals structured pruning at the given rate, whole network.",
        "",
    ]
    net = t["storage_breakeven"]
    net = net[net["layer"] == "(network)"]
    parts += [
        _md_frame(
            net,
            [
                ("network", "network"),
                ("structure", "structure"),
                ("structured rate", lambda r: f"{r['structured_rate']:g}x"),
                ("weight bits", lambda r: int(r["weight_bits"])),
                ("index bits", lambda r: int(r["index_bits"])),
                ("non-structured rate needed", lambda r: _rate(r["nonstructured_rate"])),
                ("ratio", lambda r: float(r["ratio"])),
                ("(1 + b_i/b_w)(1 + f)", lambda r: float(r["closed_form_ratio"])),
            ],
        ),
        "",
    ]
    parts += [
        "## Compute break-even",
        "",
        "The non-structured rate at which sparse execution first beats dense, in latency "
        f"and in energy, whole network (searched over {grid}; 'never' if not within).",
        "",
    ]
    ce = t["compute_breakeven"]
    ce = ce[ce["layer"] == "(network)"]
    parts += [
        _md_frame(
            ce,
            [
                ("network", "network"),
                ("platform", "platform"),
                ("weight bits", lambda r: int(r["weight_bits"])),
                ("latency break-even", lambda r: _rate(r["latency_breakeven_rate"])),
                ("energy break-even", lambda r: _rate(r["energy_breakeven_rate"])),
                ("best speedup", lambda r: float(r["best_speedup"])),
                ("best energy ratio", lambda r: float(r["best_energy_ratio"])),
            ],
        ),
        "",
    ]
    real = t["real_vs_iid"]
    if not real.empty:
        parts += [
            "## Real masks against i.i.d. masks of the same density",
            "",
            "The checkpoint's own masks against random masks with the same density in "
            "every layer: on each platform (speedup and energy ratio against dense) and "
            "in storage (relative-index CSR).",
            "",
        ]
        comp = real[real["what"] == "compute"]
        stor = real[real["what"] != "compute"]
        parts += [
            _md_frame(
                comp,
                [
                    ("network", "network"),
                    ("platform", "platform"),
                    ("weight bits", lambda r: int(r["weight_bits"])),
                    ("rate", lambda r: _rate(r["rate"])),
                    ("speedup, real", lambda r: float(r["real_speedup"])),
                    ("speedup, i.i.d.", lambda r: float(r["iid_speedup"])),
                    ("energy ratio, real", lambda r: float(r["real_energy_ratio"])),
                    ("energy ratio, i.i.d.", lambda r: float(r["iid_energy_ratio"])),
                ],
            ),
            "",
            _md_frame(
                stor,
                [
                    ("network", "network"),
                    ("weight bits", lambda r: int(r["weight_bits"])),
                    ("index bits", lambda r: int(r["index_bits"])),
                    ("bits, real", lambda r: int(r["real_bits"])),
                    ("bits, i.i.d.", lambda r: int(r["iid_bits"])),
                    ("real / i.i.d.", lambda r: r["real_bits"] / r["iid_bits"]),
                ],
            ),
            "",
        ]
    parts += ["## Plots", ""]
    for group, title in (
        ("compute", "Speedup and energy ratio against the rate"),
        ("storage", "Storage against the rate"),
        ("energy", "Energy breakdown"),
    ):
        parts += [f"### {title}", ""]
        parts += [f"![{p.stem}]({rel(p)})" for p in plots[group]]
        parts += [""]
    parts += [
        "## Assumptions",
        "",
        "Masks are i.i.d. random (non-structured) or whole filters chosen at random "
        "(structured), at the same density in every layer; real pruned masks are "
        "less uniform. Storage break-evens use expected sizes of i.i.d. masks. Latency is the "
        "largest of the compute, DRAM and SRAM bounds per layer; energy adds memory traffic, "
        "MACs, index decoding and static power. "
        + (
            "Filter pruning cascades through each network's graph: a removed filter also "
            "removes the input channels of every layer that reads it (across a residual "
            "add, only channels removed on every branch); every layer keeps more filters, "
            "by one common factor, so that each network keeps 1/R of its weights at rate "
            "R (the rate reached, `effective_rate` in the tables, is the nearest whole "
            "filters allow). "
            if c.cascade
            else "Structured pruning shrinks each layer on its own (a pruned filter does "
            "not shrink the next layer's input here). "
        )
        + "Hardware figures and their sources are in the profiles (`hwconfigs/`). Every "
        "number behind this report is in `tables/` as CSV and JSON.",
        "",
    ]
    return "\n".join(parts)
