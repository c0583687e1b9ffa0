"""Running the LLM study (:mod:`simulator.study.llm`): each workload's tables written
under ``out/parts/`` with a manifest as soon as it is done, resumed from there, and
combined into a :class:`~simulator.study.runner.StudyResult` that the CNN study's
writer turns into tables, plots and a report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from simulator import kernels
from simulator.errors import ConfigError
from simulator.hwconfig import load_platform
from simulator.study.compare import TABLES
from simulator.study.llm import (
    LLMStudyConfig,
    MaskCache,
    Workload,
    build_workload,
    config_path,
    study_workload,
)
from simulator.study.runner import (
    PRESENTATION,
    StudyResult,
    _file_hash,
    _part_folder,
    check_out_dir,
    claim_out_dir,
)
from simulator.study.verdict import decide
from simulator.studyparts import read_part, sha256_text, source_hash, write_part
from simulator.workers import sigterm_raises


def _key(config: LLMStudyConfig, model: str, phase: str, batch: int) -> str:
    """The configuration as it concerns one workload (the margin left out: it is
    applied when the verdict is derived)."""
    fields = asdict(config)
    for k in ("models", "phases", "batches", "margin"):
        fields.pop(k, None)
    fields["workload"] = [model, phase, batch]
    return sha256_text(json.dumps(fields, sort_keys=True, default=str))[:16]


def run_llm_study(
    config: LLMStudyConfig,
    out_dir: str | Path,
    progress: Callable[..., Callable[..., None]] | None = None,
    resume: bool = True,
    force: bool = False,
) -> StudyResult:
    """Run the LLM study into ``out_dir`` (see :func:`simulator.study.run_study`: the
    same folder rules, parts, manifests and resume, one part per workload).
    ``progress(steps, work)`` returns ``tick(note, work)``, called after each workload
    and weight width."""
    out = Path(out_dir)
    check_out_dir(out)
    claim_out_dir(out, config, force)  # type: ignore[arg-type]
    message = (
        f"study stopped by SIGTERM; finished workloads are kept under {out / 'parts'} "
        "and the same command resumes from them"
    )
    with sigterm_raises(message):
        return _run(config, out, progress, resume)


def _run(config, out, progress, resume) -> StudyResult:
    platforms = [load_platform(n) for n in config.platform_names()]
    if len({p.name for p in platforms}) < len(platforms):
        raise ConfigError("--platforms", "two platforms share a name (give each its own name:)")
    works = {w: build_workload(*w, config) for w in config.workloads()}  # fail early
    names = [work.name for work in works.values()]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            "--networks", f"two models share a name ({', '.join(twice)}); give each its own"
        )
    code = source_hash(PRESENTATION)
    hashes: dict[str, str] = {}
    parts = {w: _part(out, config, platforms, w, works[w], code, hashes) for w in works}
    results: dict[tuple, Mapping[str, pd.DataFrame]] = {}
    todo, recomputed = [], []
    for w in works:
        if resume:
            tables, why = read_part(parts[w][0], TABLES, **parts[w][1])
            if tables is not None:
                results[w] = tables
                continue
            if why:
                recomputed.append(f"{works[w].name}: {why}")
        todo.append(w)
    resumed = tuple(works[w].name for w in works if w in results)
    if todo:
        kernels.warm_up()
    all_widths = {x for p in platforms for x in config.weight_widths(p)}
    steps = len(todo) * max(1, len(all_widths))
    tick = progress(steps, float(steps)) if progress and todo else None
    tick = tick or (lambda note="", work=1.0: None)
    cache = MaskCache()
    for w in todo:
        work = works[w]
        tables = study_workload(
            work, platforms, config, cache, lambda note, n=work.name: tick(f"{n}: {note}", 1.0)
        )
        folder, meta = parts[w]
        write_part(folder, tables, **meta)
        back, why = read_part(folder, TABLES, **meta)
        if back is None:
            raise ConfigError(str(folder), f"study results do not verify: {why}")
        results[w] = back
    combined = {}
    for t in TABLES:
        frames = [results[w][t] for w in works if not results[w][t].empty]
        combined[t] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not combined["verdict"].empty:
        combined["verdict"] = decide(combined["verdict"], config.margin)
    return StudyResult(
        config=config,  # type: ignore[arg-type]
        tables=combined,
        out_dir=out,
        resumed=resumed,
        networks=tuple(works[w].name for w in works),
        platforms=tuple(p.name for p in platforms),
        recomputed=tuple(recomputed),
    )


def _part(out, config, platforms, w, work: Workload, code: str, hashes: dict):
    model, phase, batch = w
    inputs = {
        "code": code,
        "model": _file_hash(config_path(model), hashes),
        "network": sha256_text(repr(work.network.layers)),
    }
    for p in platforms:
        inputs[f"platform {p.name}"] = sha256_text(json.dumps(p.raw, sort_keys=True, default=str))
    key = _key(config, model, phase, batch)
    folder = _part_folder(out, work.network, key)
    return folder, {"name": work.name, "key": key, "inputs": inputs}
