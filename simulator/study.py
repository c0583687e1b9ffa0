"""The study of Ma et al. (arXiv:1907.02124): is non-structured pruning beneficial on
any platform, once weights are quantized?

For every network and platform, at equal weight bits:

- **storage break-even**: the non-structured rate (relative-index CSR, fillers and
  pointers counted) whose storage equals structured pruning at each structured
  rate, per layer and network, for each weight and index width;
- **compute break-even**: the pruning rate at which non-structured execution first
  matches dense, in latency and in energy, per layer and network, found on a grid
  of rates over masks of the real layer shapes ("never" when it does not within
  the grid) and refined by log-linear interpolation between grid points;
- **structured versus non-structured** at each network's rate (Ma et al.'s
  non-structured rates where published): the structured rate at which structured
  pruning matches it on each platform;
- a **verdict** per network and platform.

Mask statistics are computed once per network and reused for every platform and
bit width. Each network is one unit of work: its tables are written under
``out/parts/NETWORK-HASH/CONFIG/`` with a manifest when it finishes (see
:mod:`simulator.studyparts`), so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.errors import ConfigError, shown
from simulator.formats import FormatParams, MaskProfile, format_stats, profile_mask
from simulator.formats.formulas import expected_format_bits
from simulator.hwconfig import Platform, builtin_platforms, load_platform
from simulator.masks import Pruning, generate_mask
from simulator.settings import Settings, width_problems
from simulator.simulate import ENERGY_COLUMNS, simulate_network
from simulator.storage import STRUCTURED_FORMAT, storage_breakeven
from simulator.studyparts import read_part, sha256_file, sha256_text, write_part
from simulator.workers import run_in_workers, sigterm_raises
from simulator.workloads import Network, load_network

DEFAULT_NETWORKS = (
    "lenet5",
    "alexnet",
    "vgg16",
    "resnet18",
    "resnet50",
    "mobilenetv2",
    "bert_base",
)
PAPER_RATES = {"lenet5": 348.0, "alexnet": 36.0, "resnet50": 8.0}
"""Non-structured pruning rates at near-zero accuracy loss (Ma et al., arXiv:1907.02124)."""


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """What the study compares. Rates are pruning rates (8 keeps 1/8)."""

    networks: tuple[str, ...] = DEFAULT_NETWORKS
    platforms: tuple[str, ...] = ()
    weight_bits: tuple[int, ...] = (1, 2, 4, 8, 16)
    index_bits: tuple[int, ...] = (4, 8)
    structures: tuple[str, ...] = ("filter",)
    structured_rates: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
    sweep_rates: tuple[float, ...] = (1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
    rates: Mapping[str, float] = field(default_factory=dict)
    """Non-structured rate of a network for the verdict, by network name; networks
    not named take Ma et al.'s rate (:data:`PAPER_RATES`) where published, else
    ``default_rate``."""
    default_rate: float = 8.0
    seed: int = 0
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    """Network name -> pruned checkpoint whose real masks replace the generated
    non-structured masks at the network's rate (compared with i.i.d. masks of the same
    per-layer densities)."""

    def __post_init__(self) -> None:
        problems = []
        for key in ("structured_rates", "sweep_rates"):
            if not getattr(self, key) or min(getattr(self, key)) < 1:
                problems.append(f"{key}: need at least one rate, each >= 1")
        for s in self.structures:
            if s not in ("filter", "channel", "column"):
                problems.append(f"structures: {s!r} is not filter, channel or column")
        for key in ("weight_bits", "index_bits"):
            if not getattr(self, key):
                problems.append(f"{key}: need at least one width")
            for w in getattr(self, key):
                problems += width_problems(**{key: w})
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed: expected an integer >= 0, got {shown(self.seed)}")
        for name, r in {**self.rates, "default_rate": self.default_rate}.items():
            if not (isinstance(r, int | float) and math.isfinite(r) and r >= 1):
                problems.append(f"rates: {shown(name)}: must be finite and >= 1, got {shown(r)}")
        for net, path in self.checkpoints.items():
            if not Path(path).is_file():
                problems.append(f"checkpoints: {shown(net)}: no such file {shown(path, 200)}")
        if problems:
            raise ConfigError("study configuration", problems)

    @property
    def compute_index_bits(self) -> int:
        """The relative index width sparse engines run at: the first of ``index_bits``
        (the storage break-even uses them all)."""
        return self.index_bits[0]

    def settings(self, weight_bits: int) -> Settings:
        """The simulation settings of the compute half at ``weight_bits``."""
        return Settings(weight_bits=weight_bits, index_bits=self.compute_index_bits, seed=self.seed)

    def rate_of(self, network: str) -> float:
        return float(self.rates.get(network, PAPER_RATES.get(network, self.default_rate)))

    def check_names(self, networks: Iterable[str]) -> None:
        """Every network that ``rates`` and ``checkpoints`` name is among ``networks``
        (the studied networks' own names, also for networks given as files); a
        :class:`ConfigError` otherwise."""
        studied = set(networks)
        problems = [
            f"{key}: no network {', '.join(map(shown, unknown))} among those studied "
            f"({', '.join(sorted(studied))})"
            for key, unknown in (
                ("rates", sorted(set(self.rates) - studied)),
                ("checkpoints", sorted(set(self.checkpoints) - studied)),
            )
            if unknown
        ]
        if problems:
            raise ConfigError("study configuration", problems)

    def platform_names(self) -> tuple[str, ...]:
        return self.platforms or tuple(builtin_platforms())

    def digest(self, platforms: Iterable[Platform] = (), networks: Iterable[Network] = ()) -> str:
        """Identifies a configuration and the contents of everything it reads (profiles,
        networks, checkpoint files: their bytes, not their size or date)."""
        text = json.dumps(
            {
                **asdict(self),
                "checkpoints": {n: [p, _file_hash(p)] for n, p in self.checkpoints.items()},
                "platforms": [p.raw for p in platforms],
                "networks": [repr(n.layers) for n in networks],
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def compute_weight_bits(config: StudyConfig, platform: Platform) -> tuple[int, ...]:
    """The study's weight widths the platform runs natively (its smallest one if none)."""
    native = tuple(w for w in config.weight_bits if w in platform.weight_bits)
    return native or (min(platform.weight_bits),)


def verdict_weight_bits(platform: Platform) -> int:
    """The width of a platform's verdict: 8 bits where it runs them, else its first."""
    return 8 if 8 in platform.weight_bits else platform.weight_bits[0]


TOLERANCE = 1e-9
"""Relative margin by which a value must pass its target to count as passing it (a
dense array runs a pruned mask exactly as fast as dense: that is no break-even)."""


def first_crossing(rates: np.ndarray, values: np.ndarray, target: float, above: bool) -> float:
    """The smallest rate at which ``values`` passes ``target`` (rising above it when
    ``above``, else falling below), log-linearly interpolated between grid points;
    ``inf`` if it never does on the grid, the first rate if it already does there."""
    margin = abs(target) * TOLERANCE
    ok = values > target + margin if above else values < target - margin
    if not ok.any():
        return math.inf
    i = int(np.argmax(ok))
    if i == 0:
        return float(rates[0])
    v0, v1 = values[i - 1], values[i]
    r0, r1 = math.log(rates[i - 1]), math.log(rates[i])
    t = (target - v0) / (v1 - v0) if v1 != v0 else 1.0
    return float(math.exp(r0 + min(max(t, 0.0), 1.0) * (r1 - r0)))


def _profiles(network: Network, pruning: Pruning) -> dict[str, MaskProfile]:
    return {
        layer.name: profile_mask(layer, generate_mask(layer, pruning))
        for layer in network.prunable_layers
    }


def study_network(
    network: Network,
    platforms: Iterable[Platform],
    config: StudyConfig,
    tick: Callable[[], None] | None = None,
    real_masks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of the study for one network (see the module docstring). With
    ``real_masks`` (e.g. a checkpoint's), they are the non-structured pruning at the
    network's rate (their overall density) and are compared with i.i.d. masks of the
    same per-layer densities."""
    tick = tick or (lambda: None)
    platforms = list(platforms)
    seed = config.seed
    rate_n = config.rate_of(network.name)
    real = iid = None
    if real_masks is not None:
        real = {
            layer.name: profile_mask(layer, real_masks[layer.name])
            for layer in network.prunable_layers
        }
        kept = sum(p.nnz for p in real.values())
        rate_n = sum(p.weights for p in real.values()) / max(kept, 1)
        per_layer = {n: max(p.density, 1e-9) for n, p in real.items()}
        iid = _profiles(network, Pruning(density=1 / rate_n, per_layer=per_layer, seed=seed))
    sweep = sorted({*config.sweep_rates, rate_n})
    s_grid = sorted({*config.sweep_rates, *config.structured_rates, rate_n})
    structure = config.structures[0]
    sparse = {r: _profiles(network, Pruning(density=1 / r, seed=seed)) for r in sweep}
    structured = {
        (s, r): _profiles(network, Pruning(structure=s, density=1 / r, seed=seed))
        for s in config.structures
        for r in sorted({*s_grid, *config.structured_rates})
    }
    dense = {"dense": _profiles(network, Pruning(structure="dense"))}

    # --- storage -------------------------------------------------------------------
    be_rows, curve_rows = [], []
    for wb in config.weight_bits:
        for ib in config.index_bits:
            params = FormatParams(weight_bits=wb, index_bits=ib)
            for s in config.structures:
                for r in config.structured_rates:
                    for b in storage_breakeven(
                        network, s, r, params, "csr-rel", seed, structured[(s, r)]
                    ):
                        row = b.as_dict()
                        d = 1 / b.nonstructured_rate if math.isfinite(b.nonstructured_rate) else 0
                        q = (1 - d) ** (2**ib)
                        row["closed_form_ratio"] = (
                            (1 + ib / wb) * (1 + q / (1 - q)) if d else math.inf
                        )
                        be_rows.append(row)
            for r in np.geomspace(1, 1000, 31):
                bits = sum(
                    expected_format_bits(
                        "csr-rel",
                        groups=g.groups,
                        rows=g.rows,
                        cols=g.cols,
                        density=1 / r,
                        weight_bits=wb,
                        index_bits=ib,
                    )
                    for g in (layer.gemm for layer in network.prunable_layers)
                )
                curve_rows.append(
                    {
                        "network": network.name,
                        "weight_bits": wb,
                        "index_bits": ib,
                        "rate": float(r),
                        "kind": "non-structured (csr-rel)",
                        "bits": bits,
                        "dense_bits": network.weight_count * wb,
                    }
                )
        for s in config.structures:
            params = FormatParams(weight_bits=wb)

            for r in s_grid:
                bits = sum(
                    format_stats(p, STRUCTURED_FORMAT[s], params).total_bits
                    for p in structured[(s, r)].values()
                )
                for ib in config.index_bits:
                    curve_rows.append(
                        {
                            "network": network.name,
                            "weight_bits": wb,
                            "index_bits": ib,
                            "rate": float(r),
                            "kind": f"{s} ({STRUCTURED_FORMAT[s]})",
                            "bits": bits,
                            "dense_bits": network.weight_count * wb,
                        }
                    )
    tick()

    # --- compute -------------------------------------------------------------------
    layer_rows = []
    for p in platforms:
        for wb in compute_weight_bits(config, p):
            settings = config.settings(wb)
            runs = [("dense", 1.0, dense, "dense")]
            runs += [("sparse", r, {"sparse": sparse[r]}, "sparse") for r in sweep]
            runs += [
                (structure, r, {"structured": structured[(structure, r)]}, "structured")
                for r in s_grid
            ]
            if real is not None:
                runs += [
                    ("real", rate_n, {"sparse": real}, "sparse"),
                    ("iid", rate_n, {"sparse": iid}, "sparse"),
                ]
            for kind, rate, profs, variant in runs:
                est = simulate_network(network, p, profs, settings, variants=[variant])
                f = est.frame()
                f["kind"] = kind
                f["rate"] = rate
                f["weight_bits"] = wb
                layer_rows.append(f)
            tick()
    layers = pd.concat(layer_rows, ignore_index=True)
    keys = ["network", "platform", "weight_bits", "kind", "rate"]
    totals = layers.groupby(keys, sort=False)[["latency_s", *ENERGY_COLUMNS]].sum().reset_index()
    totals["layer"] = "(network)"
    per_layer = layers[[*keys, "layer", "latency_s", "energy_j"]]
    both = pd.concat(
        [per_layer, totals[[*keys, "layer", "latency_s", "energy_j"]]], ignore_index=True
    )
    base = both[both["kind"] == "dense"][
        ["platform", "weight_bits", "layer", "latency_s", "energy_j"]
    ]
    both = both.merge(base, on=["platform", "weight_bits", "layer"], suffixes=("", "_dense"))
    both["speedup"] = both["latency_s_dense"] / both["latency_s"]
    both["energy_ratio"] = both["energy_j"] / both["energy_j_dense"]
    both = both.drop(columns=["latency_s_dense", "energy_j_dense"])

    # --- compute break-even ----------------------------------------------------------
    ce_rows = []
    sw = both[both["kind"] == "sparse"]
    for (pl, wb, ly), g in sw.groupby(["platform", "weight_bits", "layer"], sort=False):
        g = g.sort_values("rate")
        rates = g["rate"].to_numpy()
        ce_rows.append(
            {
                "network": network.name,
                "platform": pl,
                "weight_bits": wb,
                "layer": ly,
                "latency_breakeven_rate": first_crossing(rates, g["speedup"].to_numpy(), 1.0, True),
                "energy_breakeven_rate": first_crossing(
                    rates, g["energy_ratio"].to_numpy(), 1.0, False
                ),
                "best_speedup": float(g["speedup"].max()),
                "best_energy_ratio": float(g["energy_ratio"].min()),
                "searched": f"{rates.min():g}-{rates.max():g}x",
            }
        )

    # --- structured vs non-structured at the network's rate, and the verdict ---------
    vs_rows, verdict_rows = [], []
    net_tot = both[both["layer"] == "(network)"]
    for p in platforms:
        for wb in compute_weight_bits(config, p):
            t = net_tot[(net_tot["platform"] == p.name) & (net_tot["weight_bits"] == wb)]
            ns_kind = "real" if real is not None else "sparse"
            ns = t[(t["kind"] == ns_kind) & (t["rate"] == rate_n)].iloc[0]
            st = t[t["kind"] == structure].sort_values("rate")
            srates = st["rate"].to_numpy()
            match_lat = first_crossing(srates, st["speedup"].to_numpy(), ns["speedup"], True)
            match_en = first_crossing(
                srates, st["energy_ratio"].to_numpy(), ns["energy_ratio"], False
            )
            same = st[np.isclose(st["rate"], rate_n)]
            if same.empty:  # the structured grid lacks the rate: interpolate in log rate
                lat_same = float(
                    np.exp(
                        np.interp(
                            math.log(rate_n), np.log(srates), np.log(st["latency_s"].to_numpy())
                        )
                    )
                )
                en_same = float(
                    np.exp(
                        np.interp(
                            math.log(rate_n), np.log(srates), np.log(st["energy_j"].to_numpy())
                        )
                    )
                )
            else:
                lat_same, en_same = (
                    float(same["latency_s"].iloc[0]),
                    float(same["energy_j"].iloc[0]),
                )
            row = {
                "network": network.name,
                "platform": p.name,
                "weight_bits": wb,
                "nonstructured_rate": rate_n,
                "structure": structure,
                "speedup_vs_dense": float(ns["speedup"]),
                "energy_ratio_vs_dense": float(ns["energy_ratio"]),
                "structured_rate_matching_latency": match_lat,
                "structured_rate_matching_energy": match_en,
                "latency_vs_structured_same_rate": float(ns["latency_s"]) / lat_same,
                "energy_vs_structured_same_rate": float(ns["energy_j"]) / en_same,
            }
            vs_rows.append(row)
            if wb == verdict_weight_bits(p) or len(compute_weight_bits(config, p)) == 1:
                verdict_rows.append(
                    {
                        **row,
                        "beats_dense_latency": row["speedup_vs_dense"] > 1,
                        "beats_dense_energy": row["energy_ratio_vs_dense"] < 1,
                        "beats_structured_latency": row["latency_vs_structured_same_rate"] < 1,
                        "beats_structured_energy": row["energy_vs_structured_same_rate"] < 1,
                    }
                )
    ns_kind = "real" if real is not None else "sparse"
    breakdown = totals[
        (totals["kind"] == "dense")
        | ((totals["kind"] == ns_kind) & (totals["rate"] == rate_n))
        | ((totals["kind"] == structure) & np.isclose(totals["rate"], rate_n))
    ]
    real_rows = []
    if real is not None:
        for p in platforms:
            for wb in compute_weight_bits(config, p):
                t = net_tot[(net_tot["platform"] == p.name) & (net_tot["weight_bits"] == wb)]
                r_row = t[t["kind"] == "real"].iloc[0]
                i_row = t[t["kind"] == "iid"].iloc[0]
                real_rows.append(
                    {
                        "network": network.name,
                        "platform": p.name,
                        "weight_bits": wb,
                        "rate": rate_n,
                        "what": "compute",
                        "real_speedup": float(r_row["speedup"]),
                        "iid_speedup": float(i_row["speedup"]),
                        "real_energy_ratio": float(r_row["energy_ratio"]),
                        "iid_energy_ratio": float(i_row["energy_ratio"]),
                    }
                )
        for wb in config.weight_bits:
            for ib in config.index_bits:
                params = FormatParams(weight_bits=wb, index_bits=ib)
                bits = {
                    name: sum(
                        format_stats(pr, "csr-rel", params).total_bits for pr in profs.values()
                    )
                    for name, profs in (("real", real), ("iid", iid))
                }
                real_rows.append(
                    {
                        "network": network.name,
                        "platform": "",
                        "weight_bits": wb,
                        "index_bits": ib,
                        "rate": rate_n,
                        "what": "storage (csr-rel bits)",
                        "real_bits": bits["real"],
                        "iid_bits": bits["iid"],
                    }
                )
    return {
        "storage_breakeven": pd.DataFrame(be_rows),
        "storage_curves": pd.DataFrame(curve_rows),
        "compute_sweep": both,
        "compute_breakeven": pd.DataFrame(ce_rows),
        "structured_vs_nonstructured": pd.DataFrame(vs_rows),
        "verdict": pd.DataFrame(verdict_rows),
        "energy_breakdown": breakdown.reset_index(drop=True),
        "real_vs_iid": pd.DataFrame(real_rows),
    }


TABLES = (
    "storage_breakeven",
    "storage_curves",
    "compute_sweep",
    "compute_breakeven",
    "structured_vs_nonstructured",
    "verdict",
    "energy_breakdown",
    "real_vs_iid",
)


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
    progress: Callable[[int], Callable[[], None]] | None = None,
    resume: bool = True,
    jobs: int = 1,
) -> StudyResult:
    """Run the study, writing each network's tables under ``out_dir/parts`` as soon
    as it is done, with up to ``jobs`` networks at a time in worker processes.

    With ``resume``, a part of an earlier run is reused only if its manifest vouches
    for it: same configuration, same inputs (the contents of profiles, networks,
    checkpoints and of prunesim's own code), every table file complete and
    unchanged. Any other part is recomputed, and the reason is in the result's
    ``recomputed``. SIGTERM stops the study (and every worker process) with
    :class:`~simulator.workers.Terminated`; finished parts stay for the next run."""
    out = Path(out_dir)
    check_out_dir(out)
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
    tick = progress(len(config.networks) * _units(config, platforms)) if progress else None
    tick = tick or (lambda: None)
    hashes: dict[str, str] = {}
    parts = {name: _part(out, config, platforms, nets[name], hashes) for name in config.networks}
    results: dict[str, Mapping[str, pd.DataFrame]] = {}
    todo, recomputed = [], []
    for name in config.networks:
        if resume:
            tables, why = _read_part(parts[name])
            if tables is not None:
                results[name] = tables
                for _ in range(_units(config, platforms)):
                    tick()
                continue
            if why:
                recomputed.append(f"{nets[name].name}: {why}")
        todo.append(name)
    resumed = tuple(n for n in config.networks if n in results)
    if jobs <= 1 or len(todo) <= 1:
        for name in todo:
            network = nets[name]
            tables = study_network(network, platforms, config, tick, real_masks(config, network))
            part = parts[name]
            _write_part(part.folder, tables, part.name, part.key, part.inputs)
    else:
        _run_parallel(todo, config, out, jobs, tick, parts, nets)
    for name in todo:  # what was just written, read back as a resumed run reads it
        tables, why = _read_part(parts[name])
        if tables is None:
            raise ConfigError(str(parts[name].folder), f"study results do not verify: {why}")
        results[name] = tables
    combined = {}
    for t in TABLES:
        frames = [results[n][t] for n in config.networks if not results[n][t].empty]
        combined[t] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
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
    files = [out / "report.md"]
    files += [out / "tables" / f"{t}.{ext}" for t in TABLES for ext in ("csv", "json")]
    problems += [f"{p} is a folder, not a file" for p in files if p.is_dir()]
    if problems:
        raise ConfigError(str(out), problems)


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


@functools.cache
def _code_hash() -> str:
    """A hash of prunesim's own source files: results of other code are not reused."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _part_key(config: StudyConfig, network: Network) -> str:
    """The configuration as it concerns one network (its rate and checkpoint, not the
    other networks'): parts of two configurations live side by side."""
    fields = asdict(config)
    fields.pop("networks", None)
    fields["rates"] = config.rate_of(network.name)
    fields["checkpoints"] = config.checkpoints.get(network.name)
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    inputs = {"code": _code_hash(), "network": sha256_text(repr(network.layers))}
    for p in platforms:
        inputs[f"platform {p.name}"] = sha256_text(json.dumps(p.raw, sort_keys=True, default=str))
    checkpoint = config.checkpoints.get(network.name)
    if checkpoint is not None:
        inputs["checkpoint"] = _file_hash(checkpoint, hashes)
    key = _part_key(config, network)
    return _Part(folder=_part_folder(out, network, key), name=network.name, key=key, inputs=inputs)


def _run_parallel(todo, config, out, jobs, tick, parts, nets) -> None:
    """Networks in ``jobs`` worker processes, largest first; each writes its part."""
    order = sorted(todo, key=lambda n: -nets[n].weight_count)
    tasks = [(n, (n, config, str(parts[n].folder), parts[n].key, parts[n].inputs)) for n in order]
    run_in_workers(f"{__name__}:_network_job", tasks, jobs, on_tick=lambda key: tick())


def _read_part(part: _Part) -> tuple[dict[str, pd.DataFrame] | None, str | None]:
    return read_part(part.folder, TABLES, name=part.name, key=part.key, inputs=part.inputs)


def _write_part(
    folder: Path, tables: Mapping[str, pd.DataFrame], name: str, key: str, inputs: dict
) -> None:
    write_part(folder, tables, name=name, key=key, inputs=inputs)
