"""The comparison for one network: every table of the study (see :mod:`simulator.study`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from simulator.dataflows import scnn
from simulator.formats import FormatParams, format_stats, profile_mask
from simulator.formats.formulas import expected_format_bits, fillers_per_nonzero_limit
from simulator.hwconfig import Platform
from simulator.masks import Pruning
from simulator.netmasks import effective_rate
from simulator.netmasks import network_profiles as _profiles
from simulator.simulate import ENERGY_COLUMNS, simulate_network
from simulator.storage import STRUCTURED_FORMAT, storage_breakeven
from simulator.study.accuracy import rate_at_equal_accuracy
from simulator.study.config import StudyConfig, compute_weight_bits, verdict_weight_bits
from simulator.study.verdict import at_rate, beyond_grid, decide
from simulator.workloads import Network

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


def _frees_activations(study: Callable[..., dict[str, pd.DataFrame]]):
    """``study``, then the SCNN engine's drawn activation masks and their counts
    forgotten (they are kept by layer, for every run and platform of a network)."""

    @functools.wraps(study)
    def run(*args, **kwargs) -> dict[str, pd.DataFrame]:
        try:
            return study(*args, **kwargs)
        finally:
            scnn.clear_activations()

    return run


@_frees_activations
def study_network(
    network: Network,
    platforms: Iterable[Platform],
    config: StudyConfig,
    tick: Callable[[str], None] | None = None,
    real_masks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of the study for one network (see the module docstring). With
    ``real_masks`` (e.g. a checkpoint's), they are the non-structured pruning at the
    network's rate (their overall density) and are compared with i.i.d. masks of the
    same per-layer densities. ``tick(note)`` is called after the storage tables
    (``"storage"``) and after each platform and weight width (``"a100, 8-bit"``)."""
    tick = tick or (lambda note: None)
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
    # the structured rate published at equal accuracy joins the structured grid
    published = rate_at_equal_accuracy(network.name)
    rate_eq = published.rate if published is not None else None
    s_grid = sorted({*config.sweep_rates, *config.structured_rates, rate_n} | {rate_eq} - {None})
    structure = config.structures[0]
    sparse = {r: _profiles(network, Pruning(density=1 / r, seed=seed)) for r in sweep}
    structured = {
        (s, r): _profiles(
            network, Pruning(structure=s, density=1 / r, seed=seed, cascade=config.cascade)
        )
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
                        row["closed_form_ratio"] = (
                            (1 + ib / wb) * (1 + fillers_per_nonzero_limit(d, ib))
                            if d
                            else math.inf
                        )
                        be_rows.append(row)
            curve_rows += nonstructured_curve(network, network.name, wb, ib)
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
                            "effective_rate": effective_rate(structured[(s, r)]),
                            "bits": bits,
                            "dense_bits": network.weight_count * wb,
                        }
                    )
    tick("storage")

    # --- compute -------------------------------------------------------------------
    runs = [("dense", 1.0, dense, "dense")]
    runs += [("sparse", r, {"sparse": sparse[r]}, "sparse") for r in sweep]
    runs += [
        (structure, r, {"structured": structured[(structure, r)]}, "structured") for r in s_grid
    ]
    if real is not None:
        runs += [
            ("real", rate_n, {"sparse": real}, "sparse"),
            ("iid", rate_n, {"sparse": iid}, "sparse"),
        ]
    # the rate each run's masks reach, per layer and for the network (the same everywhere)
    reached = {
        (kind, rate): {n: effective_rate({n: pr}) for n, pr in profs[variant].items()}
        for kind, rate, profs, variant in runs
    }
    net_rates = {
        (kind, rate): effective_rate(profs[variant]) for kind, rate, profs, variant in runs
    }
    # one row per layer of every run on every platform and width, as columns: only what
    # the tables keep (the layers' other counts stay in their results)
    rows: dict[str, list] = {c: [] for c in _LAYER_COLUMNS}
    for p in platforms:
        for wb in compute_weight_bits(config, p):
            settings = config.settings(wb)
            for kind, rate, profs, variant in runs:
                est = simulate_network(network, p, profs, settings, variants=[variant])
                _add_rows(rows, est.layers, kind, rate, wb, reached[(kind, rate)])
            tick(f"{p.name}, {wb}-bit")
    layers = pd.DataFrame(rows)
    engines = _main_engines(layers)
    totals, both, ce_rows = against_dense(layers, network.name, net_rates)

    # --- structured vs non-structured at the network's rate, and the verdict ---------
    vs_rows, verdict_rows = [], []
    net_tot = both[both["layer"] == "(network)"]
    ns_kind = "real" if real is not None else "sparse"
    for p in platforms:
        for wb in compute_weight_bits(config, p):
            t = net_tot[(net_tot["platform"] == p.name) & (net_tot["weight_bits"] == wb)]
            ns = t[(t["kind"] == ns_kind) & (t["rate"] == rate_n)].iloc[0]
            # structured pruning at the rates its masks reach (whole filters: within a
            # little of the rate asked): the same rate means as many kept weights
            st = t[t["kind"] == structure].sort_values("effective_rate")
            srates = st["effective_rate"].to_numpy()
            match_lat = first_crossing(srates, st["speedup"].to_numpy(), ns["speedup"], True)
            match_en = first_crossing(
                srates, st["energy_ratio"].to_numpy(), ns["energy_ratio"], False
            )
            same = st[np.isclose(st["effective_rate"], rate_n)]
            lat_curve, en_curve = st["latency_s"].to_numpy(), st["energy_j"].to_numpy()
            if same.empty:  # the structured grid lacks the rate: interpolate in log rate
                lat_same = at_rate(srates, lat_curve, rate_n)
                en_same = at_rate(srates, en_curve, rate_n)
            else:
                lat_same, en_same = (
                    float(same["latency_s"].iloc[0]),
                    float(same["energy_j"].iloc[0]),
                )
            # equal accuracy: structured pruning at the rate published without loss
            if rate_eq is None:
                eq_status, lat_eq, en_eq = "unknown structured rate", math.nan, math.nan
            elif beyond_grid(srates, rate_eq):
                eq_status, lat_eq, en_eq = "beyond grid", math.nan, math.nan
            else:
                eq_status = "compared"
                lat_eq = float(ns["latency_s"]) / at_rate(srates, lat_curve, rate_eq)
                en_eq = float(ns["energy_j"]) / at_rate(srates, en_curve, rate_eq)
            row = {
                "network": network.name,
                "platform": p.name,
                "platform_class": p.platform_class,
                "weight_bits": wb,
                "nonstructured_rate": rate_n,
                "nonstructured_engine": engines[(p.name, wb, ns_kind, rate_n)],
                "structure": structure,
                "structured_engine": engines[(p.name, wb, structure, rate_n)],
                "speedup_vs_dense": float(ns["speedup"]),
                "energy_ratio_vs_dense": float(ns["energy_ratio"]),
                "structured_rate_matching_latency": match_lat,
                "structured_rate_matching_energy": match_en,
                "structured_rate_searched_from": float(srates[0]),
                "latency_vs_structured_same_rate": float(ns["latency_s"]) / lat_same,
                "energy_vs_structured_same_rate": float(ns["energy_j"]) / en_same,
                "structured_rate_no_loss": math.nan if rate_eq is None else rate_eq,
                "structured_no_loss_source": published.source if published is not None else "",
                "equal_accuracy": eq_status,
                "latency_vs_structured_equal_accuracy": lat_eq,
                "energy_vs_structured_equal_accuracy": en_eq,
            }
            vs_rows.append(row)
            if wb == verdict_weight_bits(p) or len(compute_weight_bits(config, p)) == 1:
                verdict_rows.append(row)
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
    return study_tables(
        storage_breakeven=be_rows,
        storage_curves=curve_rows,
        compute_sweep=both,
        compute_breakeven=ce_rows,
        structured_vs_nonstructured=vs_rows,
        verdict=verdict_rows,
        margin=config.margin,
        energy_breakdown=breakdown,
        real_vs_iid=real_rows,
    )


def study_tables(
    *,
    storage_breakeven: list[dict],
    storage_curves: list[dict],
    compute_sweep: pd.DataFrame,
    compute_breakeven: list[dict],
    structured_vs_nonstructured: list[dict],
    verdict: list[dict],
    margin: float,
    energy_breakdown: pd.DataFrame,
    real_vs_iid: list[dict] = (),
) -> dict[str, pd.DataFrame]:
    """One network's (or workload's) tables, as every study writes them: the rows of
    each as frames, the verdict decided at ``margin`` (:func:`decide`)."""
    return {
        "storage_breakeven": pd.DataFrame(storage_breakeven),
        "storage_curves": pd.DataFrame(storage_curves),
        "compute_sweep": compute_sweep,
        "compute_breakeven": pd.DataFrame(compute_breakeven),
        "structured_vs_nonstructured": pd.DataFrame(structured_vs_nonstructured),
        "verdict": decide(pd.DataFrame(verdict), margin),
        "energy_breakdown": energy_breakdown.reset_index(drop=True),
        "real_vs_iid": pd.DataFrame(list(real_vs_iid)),
    }


_LAYER_COLUMNS = (
    "network",
    "layer",
    "platform",
    "engine",
    "latency_s",
    *ENERGY_COLUMNS,
    "kind",
    "rate",
    "weight_bits",
    "effective_rate",
)
"""The columns of the per-layer results the study's tables are made from."""


def _add_rows(
    rows: dict[str, list],
    results: Iterable,
    kind: str,
    rate: float,
    weight_bits: int,
    reached: Mapping[str, float],
) -> None:
    """Append one run's layer results (:class:`~simulator.simulate.LayerResult`) to the
    columns ``rows`` (:data:`_LAYER_COLUMNS`): what :meth:`LayerResult.record` says
    of them, the run, and the rate each layer's mask reaches (NaN where it has none)."""
    for r in results:
        c = r.cost
        rows["network"].append(r.network)
        rows["layer"].append(r.layer)
        rows["platform"].append(r.platform)
        rows["engine"].append(r.counts.engine)
        rows["latency_s"].append(c.latency_s)
        for name in ENERGY_COLUMNS:
            rows[name].append(getattr(c, name))
        rows["kind"].append(kind)
        rows["rate"].append(rate)
        rows["weight_bits"].append(weight_bits)
        rows["effective_rate"].append(reached.get(r.layer, math.nan))


def _main_engines(layers: pd.DataFrame) -> dict[tuple[str, int, str, float], str]:
    """:func:`~simulator.study.verdict.main_engine` of every run at once, by (platform,
    weight bits, kind, rate): the engine whose layers' latencies sum highest (ties to
    the engine seen first), the sums grouped as that function groups them."""
    run = ["platform", "weight_bits", "kind", "rate"]
    sums = layers.groupby([*run, "engine"], sort=False)["latency_s"].sum()
    best: dict[tuple[str, int, str, float], tuple[str, float]] = {}
    for (platform, wb, kind, rate, engine), total in sums.items():
        key = (platform, int(wb), kind, rate)
        if key not in best or total > best[key][1]:
            best[key] = (str(engine), total)
    return {key: engine for key, (engine, _) in best.items()}


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


def against_dense(
    layers: pd.DataFrame, name: str, reached: Mapping[tuple[str, float], float], scale: float = 1.0
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """The runs of one network (``layers``: a row per layer and run, with ``network``,
    ``platform``, ``weight_bits``, ``kind``, ``rate``, latency and energies) against
    dense on the same platform and width: every layer and the whole network (layer
    ``"(network)"``, its latency and energies summed and multiplied by ``scale``, with
    the rate each run ``reached``) with ``speedup`` and ``energy_ratio``; and the
    compute break-even rows of the non-structured (``sparse``) runs per platform,
    width and layer: the first rate at which they beat dense, searched over the rates
    run. Returns the whole-network rows with every energy column, the layer and
    network rows against dense, and the break-even rows."""
    keys = ["network", "platform", "weight_bits", "kind", "rate"]
    totals = layers.groupby(keys, sort=False)[["latency_s", *ENERGY_COLUMNS]].sum().reset_index()
    if scale != 1.0:
        for c in ("latency_s", *ENERGY_COLUMNS):
            totals[c] = totals[c] * scale
    totals["layer"] = "(network)"
    totals["effective_rate"] = [
        reached[(k, r)] for k, r in zip(totals["kind"], totals["rate"], strict=True)
    ]
    cols = [*keys, "effective_rate", "layer", "latency_s", "energy_j"]
    both = pd.concat([layers[cols], totals[cols]], ignore_index=True)
    base = both[both["kind"] == "dense"][
        ["platform", "weight_bits", "layer", "latency_s", "energy_j"]
    ]
    both = both.merge(base, on=["platform", "weight_bits", "layer"], suffixes=("", "_dense"))
    both["speedup"] = both["latency_s_dense"] / both["latency_s"]
    both["energy_ratio"] = both["energy_j"] / both["energy_j_dense"]
    both = both.drop(columns=["latency_s_dense", "energy_j_dense"])
    ce_rows = []
    sw = both[both["kind"] == "sparse"]
    for (pl, wb, ly), g in sw.groupby(["platform", "weight_bits", "layer"], sort=False):
        g = g.sort_values("rate")
        rates = g["rate"].to_numpy()
        ce_rows.append(
            {
                "network": name,
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
    return totals, both, ce_rows


def nonstructured_curve(
    network: Network, name: str, wb: int, ib: int, scale: float = 1.0
) -> list[dict]:
    """The expected relative-index CSR storage of i.i.d. masks over the network's
    prunable layers at 31 rates from 1 to 1000x (the storage curves' non-structured
    line), ``scale`` times the network's bits (a model simulated by some of its blocks),
    beside its dense bits at ``wb``."""
    layers = [layer.gemm for layer in network.prunable_layers]
    dense_bits = network.weight_count * wb if scale == 1 else network.weight_count * scale * wb
    rows = []
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
            for g in layers
        )
        rows.append(
            {
                "network": name,
                "weight_bits": wb,
                "index_bits": ib,
                "rate": float(r),
                "kind": "non-structured (csr-rel)",
                "effective_rate": float(r),
                "bits": bits if scale == 1 else bits * scale,
                "dense_bits": dense_bits,
            }
        )
    return rows
