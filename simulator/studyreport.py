"""Writing a study out: every table as CSV and JSON, the plots, and the report
(``report.md`` and a self-contained ``report.html``, :mod:`simulator.study.report`)."""

from __future__ import annotations

from pathlib import Path

from simulator.document import to_html, to_markdown
from simulator.files import write_via
from simulator.plots import plot_compute, plot_energy_breakdown, plot_storage
from simulator.report import write_csv, write_frame_json
from simulator.study import TABLES, StudyResult, check_out_dir, file_name
from simulator.study.report import TITLE, report_blocks, verdict_table
from simulator.study.runner import write_manifest
from simulator.studyparts import sha256_text

__all__ = ["verdict_table", "write_study", "write_tables"]


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
    t = result.tables
    write_manifest(out, result.config)  # first: a half-written folder is still claimed
    write_tables(result)
    plots: dict[str, list[Path]] = {"compute": [], "storage": [], "energy": []}
    sweep, breakeven = t["compute_sweep"], t["compute_breakeven"]
    folder = out / "plots"
    platforms = sorted(sweep["platform"].unique())
    platform_stem, network_stem = _stems(platforms), _stems(result.networks)
    for platform in platforms:
        path = folder / f"compute_{platform_stem[platform]}.png"
        write_via(path, lambda tmp, pl=platform: plot_compute(sweep, breakeven, pl, tmp))
        plots["compute"].append(path)
    ib = result.config.index_bits[0]
    for network in result.networks:
        path = folder / f"storage_{network_stem[network]}.png"
        write_via(path, lambda tmp, n=network: plot_storage(t["storage_curves"], n, ib, tmp))
        plots["storage"].append(path)
        path = folder / f"energy_{network_stem[network]}.png"
        write_via(path, lambda tmp, n=network: plot_energy_breakdown(t["energy_breakdown"], n, tmp))
        plots["energy"].append(path)
    report = out / "report.md"
    blocks = report_blocks(result, plots)
    text = to_markdown(blocks, out)
    write_via(report, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    page = to_html(blocks, TITLE)
    write_via(out / "report.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    written = {p.name for paths in plots.values() for p in paths}
    for stale in folder.glob("*.png"):  # plots of networks or platforms no longer studied
        if stale.name not in written:
            stale.unlink(missing_ok=True)
    return report
