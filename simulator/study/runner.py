"""Running the study: networks in worker processes, parts on disk with manifests,
resume, and the combined tables."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import kernels
from simulator.errors import ConfigError
from simulator.files import write_via
from simulator.hwconfig import Platform, load_platform
from simulator.study.accuracy import RATES_FILE
from simulator.study.compare import TABLES, study_network
from simulator.study.config import StudyConfig, compute_weight_bits
from simulator.study.verdict import decide
from simulator.studyparts import read_part, sha256_file, sha256_text, source_hash, write_part
from simulator.workers import run_in_workers, sigterm_raises
from simulator.workloads import Network, load_network


@dataclass(frozen=True, kw_only=True)
class StudyResult:
    """Every table of a study (DataFrames by name) and where they were written."""

    config: StudyConfig
    tables: Mapping[str, pd.DataFrame]
    out_dir: Path
    resumed: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    recomputed: tuple[str, ...] = ()
    """Networks whose earlier part could not be reused, as "network: why" lines."""

    def write(self, out_dir: str | Path | None = None, progress=None, force: bool = False) -> Path:
        """Write the study's tables (CSV, JSON), plots (PNG, SVG), ``report.md`` and
        a self-contained ``report.html`` into ``out_dir`` (default: the folder the
        study ran in); returns the path of ``report.md``. Another folder is checked
        as :func:`run_study` checks its own: one holding another study's report is
        refused unless ``force``. ``progress`` as in
        :func:`simulator.study.output.write_study`."""
        from simulator.study.output import write_study

        result = self
        if out_dir is not None and Path(out_dir) != self.out_dir:
            out = Path(out_dir)
            check_out_dir(out)
            claim_out_dir(out, self.config, force)
            result = replace(self, out_dir=out)
        return write_study(result, progress)


def real_masks(config: StudyConfig, network: Network) -> dict[str, np.ndarray] | None:
    """The real masks of a network's checkpoint, if the configuration names one (layers
    the file does not cover stay unpruned)."""
    path = config.checkpoints.get(network.name)
    if path is None:
        return None
    from simulator.checkpoints import read_checkpoint

    return read_checkpoint(path, network=network).masks(fill_missing=True)


def _units(config: StudyConfig, platforms: list[Platform]) -> int:
    """Progress units of one network: its storage part, then one per platform and width."""
    return 1 + sum(len(compute_weight_bits(config, p)) for p in platforms)


UNIT_WORK_S = {"storage": (0.3, 0.012, 0.011), "compute": (0.5, 0.05, 0.07)}
"""Seconds of CPU a network's storage tables and its compute tables (all fourteen
default platforms) take: a constant, per million weights (masks drawn, counted and
run by the sparse engines), per prunable layer (each run on every platform). Fitted
on the default study's seven networks (one process, 2-core machine under load; each
within about 20 % but LeNet-5's, whose time is mostly the first compile): used only
to order the networks among workers and to weigh progress steps, so that the time
left holds from the first step."""


def _work(network: Network, units: int) -> tuple[float, float]:
    """Expected seconds of a network's storage step and of each of its ``units - 1``
    compute steps (:data:`UNIT_WORK_S`)."""
    mw, layers = network.weight_count / 1e6, len(network.prunable_layers)
    storage, compute = (
        base + per_mw * mw + per_layer * layers for base, per_mw, per_layer in UNIT_WORK_S.values()
    )
    return storage, compute / max(units - 1, 1)


def _network_job(
    name: str, config: StudyConfig, folder: str, key: str, inputs: dict, tick=None
) -> None:
    """One network in a worker process: run it and write its part."""
    platforms = [load_platform(n) for n in config.platform_names()]
    network = load_network(name)
    tables = study_network(network, platforms, config, tick, real_masks(config, network))
    _write_part(Path(folder), tables, network.name, key, inputs)


def run_study(
    config: StudyConfig,
    out_dir: str | Path,
    progress: Callable[..., Callable[..., None]] | None = None,
    resume: bool = True,
    jobs: int = 1,
    force: bool = False,
) -> StudyResult:
    """Run the study, writing each network's tables under ``out_dir/parts`` as soon
    as it is done, with up to ``jobs`` networks at a time in worker processes.

    With ``resume``, a part of an earlier run is reused only if its manifest vouches
    for it: same configuration, same inputs (the contents of profiles, networks,
    checkpoints and of prunesim's own code), every table file complete and
    unchanged. Any other part is recomputed, and the reason is in the result's
    ``recomputed``. SIGTERM stops the study (and every worker process) with
    :class:`~simulator.workers.Terminated`; finished parts stay for the next run.

    ``progress(steps, work)``, if given, returns ``tick(note, work)``, called after
    each step (a network's storage tables, or one platform and weight width) with
    what it was and its expected share of ``work`` (seconds, roughly:
    :data:`UNIT_WORK_S`).

    A folder that holds another study's report (other options) is refused unless
    ``force``, which removes its report, tables and plots first (see
    :func:`claim_out_dir`)."""
    out = Path(out_dir)
    check_out_dir(out)
    claim_out_dir(out, config, force)
    message = (
        f"study stopped by SIGTERM; finished networks are kept under {out / 'parts'} "
        "and the same command resumes from them"
    )
    with sigterm_raises(message):
        return _run_study(config, out, progress, resume, jobs)


def _run_study(config, out, progress, resume, jobs) -> StudyResult:
    platforms = [load_platform(n) for n in config.platform_names()]
    nets = {name: load_network(name) for name in config.networks}  # fail early on bad names
    titles = [n.name for n in nets.values()]
    config.check_names(titles)
    if len(set(titles)) < len(titles):
        raise ConfigError("--networks", f"two networks share a name: {', '.join(titles)}")
    if len({p.name for p in platforms}) < len(platforms):
        raise ConfigError("--platforms", "two platforms share a name (give each its own name:)")
    units = _units(config, platforms)
    hashes: dict[str, str] = {}
    parts = {name: _part(out, config, platforms, nets[name], hashes) for name in config.networks}
    results: dict[str, Mapping[str, pd.DataFrame]] = {}
    todo, recomputed = [], []
    for name in config.networks:
        if resume:
            tables, why = _read_part(parts[name])
            if tables is not None:
                results[name] = tables
                continue
            if why:
                recomputed.append(f"{nets[name].name}: {why}")
        todo.append(name)
    resumed = tuple(n for n in config.networks if n in results)
    if todo:  # compiled (or loaded) before the clock starts, once for every worker
        kernels.warm_up()
    # progress counts what is left to do: reused networks take no time
    work = {name: _work(nets[name], units) for name in todo}
    total = sum(s + c * (units - 1) for s, c in work.values())
    tick = progress(len(todo) * units, total) if progress and todo else None
    tick = tick or (lambda note="", work=1.0: None)

    def tick_network(name: str, note: str) -> None:
        storage, compute = work[name]
        tick(f"{nets[name].name}: {note}", storage if note == "storage" else compute)

    if jobs <= 1 or len(todo) <= 1:
        for name in todo:
            network = nets[name]
            tables = study_network(
                network,
                platforms,
                config,
                lambda note, n=name: tick_network(n, note),
                real_masks(config, network),
            )
            part = parts[name]
            _write_part(part.folder, tables, part.name, part.key, part.inputs)
    else:
        _run_parallel(todo, config, out, jobs, tick_network, parts, nets)
    for name in todo:  # what was just written, read back as a resumed run reads it
        tables, why = _read_part(parts[name])
        if tables is None:
            raise ConfigError(str(parts[name].folder), f"study results do not verify: {why}")
        results[name] = tables
    combined = {}
    for t in TABLES:
        frames = [results[n][t] for n in config.networks if not results[n][t].empty]
        combined[t] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not combined["verdict"].empty:  # the margin is applied here, so parts stay valid
        combined["verdict"] = decide(combined["verdict"], config.margin)
    return StudyResult(
        config=config,
        tables=combined,
        out_dir=out,
        resumed=tuple(nets[n].name for n in resumed),
        networks=tuple(n.name for n in nets.values()),
        platforms=tuple(p.name for p in platforms),
        recomputed=tuple(recomputed),
    )


def check_out_dir(out: Path) -> None:
    """Fail before any work if the study's outputs cannot go under ``out``: a file
    where a folder goes, or a folder where a file goes."""
    out = Path(out)
    problems = [
        f"{p} is a file, not a folder"
        for p in (out, out / "parts", out / "tables", out / "plots")
        if p.exists() and not p.is_dir()
    ]
    files = [out / "report.md", out / "report.html"]
    files += [out / "tables" / f"{t}.{ext}" for t in TABLES for ext in ("csv", "json")]
    problems += [f"{p} is a folder, not a file" for p in files if p.is_dir()]
    if problems:
        raise ConfigError(str(out), problems)


STUDY_MANIFEST = "study.json"
"""The file in a study's folder that says which study's results the folder holds."""


def study_options(config: StudyConfig) -> dict:
    """The options that make a study's results, as plain JSON data: every field of the
    configuration (the platforms named) but the margin, which only reads the verdict
    (a rerun at another margin rewrites the report from the same results)."""
    d = asdict(config)
    d["platforms"] = list(config.platform_names())
    d.pop("margin")
    return json.loads(json.dumps(d, sort_keys=True, default=str))


def claim_out_dir(out: Path, config: StudyConfig, force: bool = False) -> None:
    """Refuse ``out`` if it holds the report of another study, before any work: a
    manifest (:data:`STUDY_MANIFEST`, written with the report) naming other options,
    or a report without a manifest (written before manifests). The
    :class:`ConfigError` names the options that differ. With ``force`` that study's
    report, tables and plots are removed instead. Per-network parts are never in the
    way: they are kept by configuration and reused only where they match."""
    want = study_options(config)
    path = out / STUDY_MANIFEST
    have: dict | None = None
    held = path.is_file() or (out / "report.md").is_file()
    if path.is_file():
        try:
            have = json.loads(path.read_text(encoding="utf-8")).get("config")
        except (OSError, ValueError, AttributeError):
            have = None
    if not held or have == want:
        return
    if not force:
        differ = sorted(k for k in want if not isinstance(have, dict) or have.get(k) != want[k])
        what = f"its {', '.join(differ)} differ" if have is not None else "of unknown options"
        raise ConfigError(
            str(out),
            f"holds the results of another study ({what}); give another --out, or "
            "--force to replace them",
        )
    for name in (STUDY_MANIFEST, "report.md", "report.html"):
        (out / name).unlink(missing_ok=True)
    for folder in ("tables", "plots"):
        if (out / folder).is_dir():
            shutil.rmtree(out / folder)


def write_manifest(out: Path, config: StudyConfig) -> Path:
    """Write ``out``'s :data:`STUDY_MANIFEST`: the options of the study whose report,
    tables and plots the folder holds (see :func:`claim_out_dir`)."""
    text = json.dumps({"config": study_options(config)}, indent=1, sort_keys=True) + "\n"
    return write_via(out / STUDY_MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def file_name(name: str) -> str:
    """A network's or platform's name made safe as a file or folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"


@dataclass(frozen=True, kw_only=True)
class _Part:
    """Where a network's part goes and what its manifest must say to be reused."""

    folder: Path
    name: str
    key: str
    inputs: dict[str, str]


def _file_hash(path: str | Path, cache: dict[str, str] | None = None) -> str:
    """A file's content hash (``missing`` if it is not a readable file)."""
    text = str(path)
    if cache is not None and text in cache:
        return cache[text]
    try:
        digest = sha256_file(text)
    except OSError:
        digest = "missing"
    if cache is not None:
        cache[text] = digest
    return digest


PRESENTATION = (
    "__main__.py",
    "cli/",
    "document.py",
    "plots/",
    "study/answer.py",
    "study/report.py",
    "study/llmreport.py",
    "study/output.py",
)
"""prunesim's source files (paths under the package) that only present results:
they are left out of the code hash that vouches for a part, so that a change to the
report or the plots reuses every finished part (tests/test_resume.py checks that computing a network
imports none of them)."""


def _part_key(config: StudyConfig, network: Network) -> str:
    """The configuration as it concerns one network (its rate and checkpoint, not the
    other networks'): parts of two configurations live side by side. The verdict's
    margin is left out: it is applied when the verdict is derived from the parts."""
    fields = asdict(config)
    fields.pop("networks", None)
    fields.pop("margin", None)
    fields["rates"] = config.rate_of(network.name)
    fields["checkpoints"] = config.checkpoints.get(network.name)
    text = json.dumps(fields, sort_keys=True, default=str)
    return sha256_text(text)[:16]


def _part_folder(out: Path, network: Network, key: str = "") -> Path:
    """Where a network's finished tables go: ``parts/SAFE-NAME-HASH/KEY``, the hash
    of the exact name keeping apart names that the safe form merges (``net a`` and
    ``net_a``), the key keeping apart configurations."""
    name = network.name
    folder = out / "parts" / f"{file_name(name)[:60]}-{sha256_text(name)[:8]}"
    return folder / key if key else folder


def _part(
    out: Path, config: StudyConfig, platforms: list[Platform], network: Network, hashes: dict
) -> _Part:
    inputs = {
        "code": source_hash(PRESENTATION),
        "network": sha256_text(repr((network.layers, network.graph))),
    }
    inputs["accuracy rates"] = _file_hash(RATES_FILE, hashes)
    for p in platforms:
        inputs[f"platform {p.name}"] = sha256_text(json.dumps(p.raw, sort_keys=True, default=str))
    checkpoint = config.checkpoints.get(network.name)
    if checkpoint is not None:
        inputs["checkpoint"] = _file_hash(checkpoint, hashes)
    key = _part_key(config, network)
    return _Part(folder=_part_folder(out, network, key), name=network.name, key=key, inputs=inputs)


def expected_cpu_s(network: Network) -> float:
    """Rough CPU seconds of one network's part of the default study
    (:data:`UNIT_WORK_S`); used only to order the work."""
    mw, layers = network.weight_count / 1e6, len(network.prunable_layers)
    return sum(
        base + per_mw * mw + per_layer * layers for base, per_mw, per_layer in UNIT_WORK_S.values()
    )


def _run_parallel(todo, config, out, jobs, tick, parts, nets) -> None:
    """Networks in ``jobs`` worker processes, the longest expected first (each worker
    takes the next when it is done, so the last to finish are the shortest); each
    writes its part."""
    order = sorted(todo, key=lambda n: -expected_cpu_s(nets[n]))
    tasks = [(n, (n, config, str(parts[n].folder), parts[n].key, parts[n].inputs)) for n in order]
    run_in_workers(f"{__name__}:_network_job", tasks, jobs, on_tick=tick)


def _read_part(part: _Part) -> tuple[dict[str, pd.DataFrame] | None, str | None]:
    return read_part(part.folder, TABLES, name=part.name, key=part.key, inputs=part.inputs)


def _write_part(
    folder: Path, tables: Mapping[str, pd.DataFrame], name: str, key: str, inputs: dict
) -> None:
    write_part(folder, tables, name=name, key=key, inputs=inputs)
