"""Writing a study out: every table as CSV and JSON, the plots, and the report
(``report.md`` and a self-contained ``report.html``, :mod:`simulator.study.report`)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd

from simulator.document import to_html, to_markdown
from simulator.files import write_via
from simulator.report import breakeven_at_most, write_csv, write_frame_json
from simulator.study.compare import TABLES
from simulator.study.report import TITLE, report_blocks, verdict_table
from simulator.study.runner import StudyResult, check_out_dir, file_name, write_manifest
from simulator.study.verdict import matched_at_most
from simulator.studyparts import sha256_text

__all__ = ["verdict_table", "write_plots", "write_study", "write_tables"]


def _stems(names) -> dict[str, str]:
    """Each name as a file name; names that the safe form would merge (``net a`` and
    ``net_a``) get a short hash of the exact name, so that no plot replaces another."""
    names = list(dict.fromkeys(names))
    safe = [file_name(n) for n in names]
    return {
        n: f"{f}-{sha256_text(n)[:8]}" if safe.count(f) > 1 else f
        for n, f in zip(names, safe, strict=True)
    }


MATCHING_RATES = ("structured_rate_matching_latency", "structured_rate_matching_energy")
"""The structured rates that match non-structured pruning (structured_vs_nonstructured,
verdict): infinite where none searched does."""

BREAKEVEN_RATES = ("latency_breakeven_rate", "energy_breakeven_rate")
"""The compute break-evens (compute_breakeven): infinite where no rate searched
breaks even."""

REAL_VS_IID_COLUMNS = (
    "network",
    "platform",
    "weight_bits",
    "rate",
    "what",
    "real_speedup",
    "iid_speedup",
    "real_energy_ratio",
    "iid_energy_ratio",
    "index_bits",
    "real_bits",
    "iid_bits",
)
"""real_vs_iid's columns (:func:`simulator.study.study_network`), the header of its
files when it has no rows (a study without checkpoints), so that they still load."""


def file_status(name: str, tables: dict[str, pd.DataFrame]) -> dict[str, pd.Series | None]:
    """The columns of table ``name`` that carry a ``<column>_status`` in its files
    (:func:`simulator.report.for_file`), each with the rows where its number is only
    an upper bound (``None``: it cannot be). These are the columns that
    :func:`simulator.study.first_crossing` and the storage break-even fill: a rate
    that is never reached is infinite; one reached already at the mildest rate
    searched is that rate, an upper bound."""
    frame = tables[name]
    if frame.empty:
        return {}
    if name == "storage_breakeven":
        return {**breakeven_at_most(frame), "closed_form_ratio": None}
    if name == "compute_breakeven":
        sweep = tables["compute_sweep"]
        keys = ["network", "platform", "weight_bits", "layer"]
        first = sweep[sweep["kind"] == "sparse"].groupby(keys)["rate"].min()
        start = frame.join(first.rename("searched_from"), on=keys)["searched_from"]
        return {c: frame[c] <= start for c in BREAKEVEN_RATES}
    if name in ("structured_vs_nonstructured", "verdict"):
        start = frame["structured_rate_searched_from"]
        return {c: matched_at_most(frame[c], start) for c in MATCHING_RATES}
    return {}


def write_tables(result: StudyResult) -> Path:
    """Write every table as CSV and JSON into ``tables/``; returns that folder.

    One row per line in both. JSON: a list of row objects (``pd.read_json(path)``
    gives the table), numbers as JSON numbers, ``null`` for a missing number. CSV: an
    empty cell for a missing number. Neither holds an infinity: where the study's
    table has one ("never"), the file has a missing number, and a
    ``<column>_status`` column right after the number says ``never``, ``at_most``
    (the number is an upper bound: already reached at the mildest rate searched) or
    ``exact`` (:data:`simulator.report.STATUSES`). The columns that carry a status
    (:func:`file_status`): ``nonstructured_rate``, ``ratio`` and ``closed_form_ratio``
    of storage_breakeven (``closed_form_ratio`` is never ``at_most``), the two
    break-even rates of compute_breakeven, and the two
    ``structured_rate_matching_*`` columns of structured_vs_nonstructured and
    verdict. Any other infinity (a rate reached with no weight kept) is a missing
    number. The tables in memory (``result.tables``) keep their infinities."""
    check_out_dir(result.out_dir)
    folder = result.out_dir / "tables"
    for name in TABLES:
        frame = result.tables[name]
        if name == "real_vs_iid" and frame.empty and frame.columns.empty:
            frame = pd.DataFrame(columns=list(REAL_VS_IID_COLUMNS))
        status = file_status(name, result.tables)
        write_via(folder / f"{name}.csv", lambda tmp, f=frame, s=status: write_csv(tmp, f, s))
        write_via(
            folder / f"{name}.json", lambda tmp, f=frame, s=status: write_frame_json(tmp, f, s)
        )
    return folder


def write_study(result: StudyResult, progress=None) -> Path:
    """Write tables (CSV, JSON), plots, ``report.md`` and ``report.html`` into the
    study's folder; returns the report's path. Each file is written under a temporary
    name and renamed into place. ``progress(figures)``, if given, returns a
    ``tick(note)`` called after each figure drawn (see :func:`write_plots`)."""
    out = result.out_dir
    write_manifest(out, result.config)  # first: a half-written folder is still claimed
    write_tables(result)
    plots = write_plots(result, progress)
    report = out / "report.md"
    title = TITLE
    if getattr(result.config, "suite", "cnn") == "llm":
        from simulator.study import llmreport

        blocks, title = llmreport.llm_report_blocks(result, plots), llmreport.TITLE
    else:
        blocks = report_blocks(result, plots)
    text = to_markdown(blocks, out)
    write_via(report, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    page = to_html(blocks, title)
    write_via(out / "report.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return report


PLOT_INDEX = "digests.json"
"""The file in ``plots/`` that maps each figure's stem to the digest of what it was
drawn from (:func:`simulator.plots.figure_digest`). Not a hidden name: hidden names
are temporaries (:func:`simulator.files.temporary_name`)."""


def write_plots(result: StudyResult, progress=None) -> dict[str, list[Path]]:
    """Draw the study's figures into ``plots/``, each as PNG and SVG under one stem
    (``compute_PLATFORM``, ``storage_NETWORK``, ``energy_NETWORK``); returns the PNG
    paths by group (``compute``, ``storage``, ``energy``), the SVG beside each.

    A figure is drawn only if its data, options or the plotting code changed since
    it was last written: :data:`PLOT_INDEX` holds the digest of each figure's
    inputs, entries of figures about to be redrawn are dropped from it before any
    drawing and the new ones written after, so an interrupted run redraws what it
    did not finish. A fully resumed study draws nothing. Files of figures no longer
    in the study (networks or platforms dropped) are removed. ``progress(figures)``,
    if given, is called with the number of figures to draw and returns a
    ``tick(note)``, called after each (not called when none is drawn)."""
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
    tick = (progress(len(todo)) if progress and todo else None) or (lambda note="": None)
    for stem, draw in todo:
        figs.save_figure(draw(), folder / stem)
        index[stem] = digests[stem]
        tick(stem)
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
    """Each studied platform's class (cpu, gpu, fpga, asic), as the verdict records it."""
    v = result.tables.get("verdict")
    if v is None or v.empty:
        return {}
    return dict(zip(v["platform"], v["platform_class"], strict=True))


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
