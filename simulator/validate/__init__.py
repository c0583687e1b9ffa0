"""Predicted against reference: every anchor prunesim is held to, with its band.

The references, their sources and bands are data (``references.yaml`` beside this
module; :func:`references`); the predictions are :mod:`~simulator.validate.checks`
(published and recorded figures) and :mod:`~simulator.validate.host` (this machine,
measured in the same run). :func:`validate` runs them and returns a
:class:`Report`; :func:`write_outputs` writes it as CSV and Markdown.

A row's relative error is predicted / reference - 1. It passes when the error lies in
its ``band`` (or the predicted value in its ``range``). A ``gap`` row is a known miss
held where it stands: it passes inside its band and fails outside it like any other.
Rows of single timings on this machine are shown for information and never fail, and
so are the all-thread medians when the load average at their start exceeded the core
count (wall time then measures the contention).
"""

from __future__ import annotations

import csv
import functools
import io
import platform as _platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError
from simulator.validate import llm as _llm  # noqa: F401  (registers the LLM checks)
from simulator.validate.checks import CHECKS
from simulator.validate.host import (
    TARGETS,
    TARGETS_ALL_THREADS,
    HostPlan,
    host_plan,
    run_host,
    thread_counts,
    total_ticks,
)

__all__ = [
    "REFERENCES",
    "HostPlan",
    "Report",
    "Row",
    "host_plan",
    "references",
    "table",
    "validate",
    "write_outputs",
]

REFERENCES = Path(__file__).resolve().parent / "references.yaml"
"""The shipped references."""
_ROOT = Path(__file__).resolve().parents[2]
TEST_DATA = _ROOT / "tests" / "data"
"""Recorded SCALE-Sim reports (a source checkout's tests/data; not in a wheel)."""


@dataclass(frozen=True, kw_only=True)
class Row:
    """One reference against its prediction."""

    section: str
    id: str
    quantity: str
    predicted: float
    reference: float | None
    reference_text: str
    unit: str
    error: float | None
    band: str
    status: str  # pass, FAIL, gap (a known miss inside its band), info, skipped
    source: str
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


@dataclass(frozen=True, kw_only=True)
class Report:
    rows: tuple[Row, ...]
    machine: str
    sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.failed)


@functools.cache
def _load(path: str) -> dict:
    from simulator.yamlio import read_yaml

    data = read_yaml(path)
    if not isinstance(data, dict) or not {"sources", "tables", "checks"} <= set(data):
        raise ConfigError(path, "expected 'sources', 'tables' and 'checks'")
    return data


def references(path: str | Path | None = None) -> dict:
    """The reference file (default: the shipped one) as plain data."""
    return _load(str(path or REFERENCES))


def table(ref: str, path: str | Path | None = None) -> Any:
    """A value of the reference tables by dotted path, e.g. ``eyeriss.total.latency_ms``."""
    node: Any = references(path)["tables"]
    for part in ref.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError("references", f"no table entry {ref!r}")
        node = node[part]
    return node


def number_text(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 and v == int(v):  # counts (cycles, words): every digit
        return f"{v:,.0f}"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.4g}"
    return f"{v:.4g}" if abs(v) < 100 else f"{v:,.1f}"


def _band_text(spec: Mapping[str, Any]) -> str:
    if "range" in spec:
        lo, hi = spec["range"]
        return f"{number_text(lo)} .. {number_text(hi)}"
    lo, hi = spec["band"]
    if lo == hi == 0:
        return "exact"
    return f"{100 * lo:+.0f}% .. {100 * hi:+.0f}%"


def _check_row(spec: Mapping[str, Any], tables: Mapping[str, Any], data: Path, path) -> Row:
    args = dict(spec.get("args") or {})
    fn = CHECKS.get(spec["check"])
    if fn is None:
        raise ConfigError(f"references: {spec['id']}", f"unknown check {spec['check']!r}")
    ref_value = table(spec["ref"], path) if "ref" in spec else spec.get("value")
    if isinstance(ref_value, Mapping) and "samples_per_s" in ref_value:  # MLPerf
        ref_value = ref_value["gpus"] / ref_value["samples_per_s"] * 1e6
    rng = spec.get("range")
    if isinstance(ref_value, list):  # a published range
        rng = rng or ref_value
    base = {
        "section": spec["source"],
        "id": spec["id"],
        "quantity": spec.get("quantity", spec["id"]),
        "unit": spec.get("unit", ""),
        "source": spec["source"],
        "note": spec.get("note", ""),
    }
    band = _band_text({**spec, "range": rng} if rng else spec)
    if spec["check"].startswith("scalesim"):
        if not (data / "scalesim").is_dir():
            return Row(
                **{**base, "note": f"skipped: no recorded reports under {data}"},
                predicted=float("nan"),
                reference=None,
                reference_text="",
                error=None,
                band=band,
                status="skipped",
            )
        args["data"] = data
    pred = fn(tables, **args)
    reference = pred.reference if pred.reference is not None else ref_value
    if isinstance(reference, list):
        ref_num, ref_text = None, f"{number_text(reference[0])} .. {number_text(reference[1])}"
    elif reference is None:
        ref_num, ref_text = None, ""
    else:
        ref_num, ref_text = float(reference), number_text(float(reference))
    if pred.error is not None:
        error = pred.error
    elif rng:  # a range or a bound: the row shows where the prediction falls in it
        error = None
    else:
        error = pred.predicted / ref_num - 1 if ref_num else None
    if rng:
        ok = rng[0] <= pred.predicted <= rng[1]
    else:
        lo, hi = spec["band"]
        check_err = error if error is not None else float("nan")
        ok = lo - 1e-12 <= check_err <= hi + 1e-12
    status = ("gap" if spec.get("status") == "gap" else "pass") if ok else "FAIL"
    note = "; ".join(x for x in (base.pop("note"), pred.detail) if x)
    role = spec.get("role")
    if role:
        note = f"{role}; {note}" if note else role
    return Row(
        **base,
        note=note,
        predicted=float(pred.predicted),
        reference=ref_num,
        reference_text=ref_text,
        error=error,
        band=band,
        status=status,
    )


def _host_rows(runs) -> list[Row]:
    rows = []
    for run in runs:
        label = f"{run.threads} thread{'s' if run.threads > 1 else ''}, {run.clock} time"
        load = (
            ""
            if run.clock == "cpu" or run.load_average is None
            else f"; load average {run.load_average:.1f} at start, {run.cores} cores"
            + (": contended, shown not checked" if run.contended else "")
        )
        for p in run.points:
            what = "dense s" if p.kind == "dense latency" else f"CSR/dense at d={p.density:g}"
            rows.append(
                Row(
                    section="host",
                    id=f"host/{run.threads}t/{p.shape}/{what}",
                    quantity=f"{p.shape}: {what} ({label})",
                    predicted=p.predicted,
                    reference=p.measured,
                    reference_text=number_text(p.measured),
                    unit="s" if p.kind == "dense latency" else "x",
                    error=p.error,
                    band="",
                    status="info",
                    source="host",
                    note=f"profile: {run.profile}{load}",
                )
            )
        targets = TARGETS if run.threads == 1 else TARGETS_ALL_THREADS
        for kind, limit in targets.items():
            med = run.median_error(kind)
            n = sum(p.kind == kind for p in run.points)
            status = "info" if run.contended else ("pass" if med <= limit else "FAIL")
            rows.append(
                Row(
                    section="host",
                    id=f"host/{run.threads}t/median-{kind.replace(' ', '-').replace('/', '-')}",
                    quantity=f"median |error| of {kind}, {n} points ({label})",
                    predicted=med,
                    reference=0.0,
                    reference_text="measured",
                    unit="",
                    error=med,
                    band=f"<= {100 * limit:.0f}%",
                    status=status,
                    source="host",
                    note=f"profile: {run.profile}"
                    + ("" if run.threads == 1 else "; wall time on a shared machine: loose band")
                    + load,
                )
            )
    return rows


def describe_machine() -> str:
    import os

    from simulator.calibrate.measure import blas_info, machine

    m = machine(1)
    try:
        load = f", load average {os.getloadavg()[0]:.1f} when it started"
    except OSError:  # pragma: no cover - not on every system
        load = ""
    return (
        f"{m.cpu_model}, {m.logical_cpus} logical CPUs, {blas_info()}, Python "
        f"{_platform.python_version()}, numpy {m.numpy_version}, scipy {m.scipy_version}{load}"
    )


def validate(
    *,
    quick: bool = False,
    measure: bool = True,
    platform_file: str | Path | None = None,
    threads: Sequence[int] | None = None,
    plan: HostPlan | None = None,
    reference_file: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: Callable[[int], Callable[[], object]] | None = None,
) -> Report:
    """Every check of ``reference_file`` (default the shipped one), then this machine
    (unless ``measure`` is false) with ``plan`` (default :func:`host_plan` ``(quick)``)
    at ``threads`` (default one and all; one with ``platform_file``)."""
    data = references(reference_file)
    machine = describe_machine()
    tables = data["tables"]
    where = Path(data_dir) if data_dir is not None else TEST_DATA
    ids = [c.get("id") for c in data["checks"]]
    if len(set(ids)) != len(ids):
        raise ConfigError("references", "check ids must be unique")
    rows = [_check_row(spec, tables, where, reference_file) for spec in data["checks"]]
    if measure:
        p = plan or host_plan(quick)
        counts = tuple(threads or ((1,) if platform_file else thread_counts()))
        tick = (progress or (lambda total: lambda *_: None))(
            total_ticks(p, counts, platform_file is None)
        )
        rows += _host_rows(run_host(p, threads=counts, platform_file=platform_file, tick=tick))
    return Report(rows=tuple(rows), machine=machine, sources=data["sources"])


# --- output ----------------------------------------------------------------------------

COLUMNS = (
    "section",
    "id",
    "quantity",
    "predicted",
    "reference",
    "unit",
    "error",
    "band",
    "status",
    "note",
)


def error_text(e: float | None) -> str:
    return "" if e is None or e != e else f"{100 * e:+.1f}%"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=[*COLUMNS, "reference_text", "source"], lineterminator="\n")
    w.writeheader()
    for r in report.rows:
        w.writerow({k: v for k, v in asdict(r).items()})
    return out.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(report: Report, command: str = "prunesim validate") -> str:
    lines = [
        f"Machine: {report.machine}. Command: `{command}`.",
        "",
        "| reference | predicted | reference value | unit | error | band | status | note |",
        "| --- | ---: | ---: | --- | ---: | --- | --- | --- |",
    ]
    for r in report.rows:
        status = f"**{r.status}**" if r.failed else r.status
        pred = number_text(r.predicted) if r.predicted == r.predicted else ""
        lines.append(
            f"| {_md(r.quantity)} | {pred}"
            f" | {_md(r.reference_text)} | {r.unit} | {error_text(r.error)} | {_md(r.band)} "
            f"| {status} | {_md(r.note)} |"
        )
    lines += ["", "Sources:", ""]
    for key, s in report.sources.items():
        via = f" Read via {s['read_via']}." if s.get("read_via") else ""
        url = f"<{s['url']}>" if "://" in s["url"] else f"`{s['url']}`"
        lines.append(f"- **{key}**: {s['cite']}. {url}.{via}")
    n_fail = len(report.failed)
    lines += ["", f"{len(report.rows)} rows, {n_fail} outside their band."]
    return "\n".join(lines) + "\n"


def write_outputs(report: Report, out_dir: str | Path, command: str = "prunesim validate"):
    """Write ``validation.csv`` and ``validation.md`` under ``out_dir``; returns the paths."""
    d = Path(out_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
        paths = (d / "validation.csv", d / "validation.md")
        paths[0].write_text(to_csv(report), encoding="utf-8")
        paths[1].write_text(to_markdown(report, command), encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(d), f"cannot write ({e.strerror or e})") from None
    return paths
