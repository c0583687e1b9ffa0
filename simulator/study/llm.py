"""The LLM study: is unstructured sparsity beneficial for LLM inference, and where?

For each decoder model (a Hugging Face config), phase (prefill of ``seq_len`` tokens,
decode of one token at ``context``) and batch, on every platform, at equal weight
quantization (each of ``weight_bits`` the platform runs natively):

- **dense** execution;
- **non-structured** pruning at each of ``rates`` (i.i.d. random masks, the same
  density in every layer), and at ``breakeven_rates`` for the compute break-even;
- **N:M** (2:4) masks: on the platform's N:M unit where it has one, elsewhere run as a
  sparse mask by its sparse engine;
- **structured** pruning of attention heads (KV groups) and MLP channels at the same
  rates (:mod:`simulator.llmprune`): a smaller dense problem, its attention products
  and KV cache shrunk with the heads.

Each (model, phase, batch) is one *workload* and plays the part a network plays in
the CNN study (:mod:`simulator.study.compare`): the same tables (the compute sweep,
compute break-evens, structured against non-structured at the verdict's rate
``verdict_rate``, the verdict with its margin, the energy breakdown, storage
break-evens and curves), named ``"MODEL PHASE bB"`` in their ``network`` column.

**Equal accuracy.** The structured side "at the same accuracy" comes from published
WikiText-2 perplexities (``llm_accuracy.yaml``, :mod:`.llm_accuracy`): the structured
figure closest to (not worse than, where one is) the best unstructured figure at the
verdict's rate, at the same sequence length; its rate over the decoder blocks (from
the parameter counts the source states) joins the structured rates simulated, and
the verdict's equal-accuracy columns carry the metric, both perplexities and their
gap. Where a model lacks either figure the columns say which is unknown.

**Blocks simulated.** Every block of a config has the same shapes, so only the first
``blocks`` blocks are built and simulated (masks drawn per layer from the seed and the
layer's name, as in the whole network) and the network's totals (latency, energy,
storage bits) are the simulated blocks' totals times ``layers / blocks``; per-layer
rows are the simulated layers' own. On the rooflines (GPUs, CPUs) this equals the
run of every block to rounding, random masks included; engines that simulate load
imbalance from the mask leave out its spread between blocks, and engines that keep
weights on chip across inferences (EIE) count the chip's weight memory once per
simulated block (``tests/test_llm_study.py`` holds an 8-block model to 1 % on the
rooflines and 5 % on EIE, 3.1 % off there; Llama-2-7B dense decode on EIE is 0.3 %
under the 32-block latency). ``blocks = 0`` simulates every block. The LM head is
left out (``lm_head=False``): neither structure prunes it, and embeddings are
look-ups, not products.

:mod:`.llmconfig` says what is compared and builds the workloads; this module makes
each workload's tables; :mod:`.llmrun` runs them and keeps their parts;
:mod:`.llmreport` words the answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from simulator.formats import FormatParams, MaskProfile, format_stats, packed_profile
from simulator.hwconfig import Platform
from simulator.layers import Layer
from simulator.llmprune import STRUCTURE, prune_heads_channels
from simulator.masks import Pruning, generate_mask
from simulator.netmasks import effective_rate, layer_profiles
from simulator.simulate import simulate_platforms
from simulator.storage import STRUCTURED_FORMAT, storage_breakeven
from simulator.study.compare import (
    _LAYER_COLUMNS,
    _add_rows,
    _main_engines,
    against_dense,
    first_crossing,
    nonstructured_curve,
    study_tables,
)
from simulator.study.llm_accuracy import EqualAccuracy, ModelAccuracy, equal_accuracy, llm_accuracy
from simulator.study.llmconfig import (
    DEFAULT_MODELS,
    DEFAULT_RATES,
    LLMStudyConfig,
    Workload,
    build_workload,
    config_path,
    workload_name,
)
from simulator.study.verdict import at_rate
from simulator.workloads import Network

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_RATES",
    "LLMStudyConfig",
    "MaskCache",
    "Workload",
    "build_workload",
    "config_path",
    "study_workload",
    "workload_name",
]

NM_KIND = "2:4"
"""The ``kind`` of N:M runs in the tables (whatever N:M is asked, the default 2:4)."""
HELD_PROFILE_BYTES = 2**29
"""Largest memory the drawn masks of one model may take, held for all its workloads
(bit-packed: an eighth of a byte per weight, per rate and N:M); masks that would
pass it are drawn layer by layer for each run and dropped (the memory bounded by the
largest layer, the masks drawn again for every workload and width)."""


class MaskCache:
    """The drawn masks of one model's simulated blocks, shared by its workloads (their
    weight layers are the same): profile sources by (model key, kind, rate). Drawn
    masks are held bit-packed (:func:`~simulator.formats.packed_profile`) where they
    fit :data:`HELD_PROFILE_BYTES`, else made per layer when asked and dropped; a
    cache asked for another model's masks forgets the previous model's."""

    def __init__(self) -> None:
        self._held: dict[tuple, Callable[[Layer], MaskProfile]] = {}
        self._model: tuple | None = None
        self.held_bytes = 0
        """Bytes of the packed masks held now (about)."""

    def source(self, network: Network, key: tuple, pruning: Pruning):
        model, rest = key[:3], key[3:]
        if model != self._model:
            self._held.clear()
            self._model, self.held_bytes = model, 0
        if rest in self._held:
            return self._held[rest]
        if pruning.structure == "dense":
            src = layer_profiles(network, pruning)  # closed forms: nothing weight-sized
        elif self.held_bytes + network.weight_count / 8 > HELD_PROFILE_BYTES:
            return layer_profiles(network, pruning)
        else:
            self.held_bytes += network.weight_count // 8
            held = {
                layer.name: packed_profile(layer, generate_mask(layer, pruning))
                for layer in network.prunable_layers
            }

            def src(layer: Layer) -> MaskProfile:
                return held[layer.name]

        self._held[rest] = src
        return src


def study_workload(
    work: Workload,
    platforms: Iterable[Platform],
    config: LLMStudyConfig,
    cache: MaskCache | None = None,
    tick: Callable[[str], None] | None = None,
    accuracy: Mapping[str, ModelAccuracy] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of the study for one workload (see the module docstring); ``tick``
    is called after each weight width (``"8-bit"``). ``accuracy``: published
    perplexities by model name (default ``llm_accuracy.yaml``): the structured rate
    at equal accuracy (:func:`~simulator.study.llm_accuracy.equal_accuracy`) joins
    the structured rates simulated."""
    tick = tick or (lambda note: None)
    cache = cache or MaskCache()
    platforms = list(platforms)
    network, scale, seed = work.network, work.scale, config.seed
    model_key = (network.source, work.simulated_blocks, seed)
    rates = sorted(config.rates)
    rate_n = float(next(r for r in rates if math.isclose(r, config.verdict_rate)))
    dense = cache.source(network, (*model_key, "dense"), Pruning(structure="dense"))
    sweep = list(config.sweep_rates)  # rates and breakeven_rates
    sparse = {
        r: cache.source(network, (*model_key, "sparse", r), Pruning(density=1 / r, seed=seed))
        for r in sweep
    }
    nm_pruning = Pruning(structure="nm", nm=config.nm, seed=seed)
    nm = cache.source(network, (*model_key, "nm", config.nm), nm_pruning)
    model = work.name.rsplit(" ", 2)[0]
    published = (llm_accuracy() if accuracy is None else accuracy).get(model)
    eq = equal_accuracy(published, rate_n, network.weight_count * scale)
    s_rates = sorted({*rates, eq.structured_rate} - {None})
    structured = {r: prune_heads_channels(network, 1 / r, seed) for r in s_rates}
    nm_rate = config.nm[1] / config.nm[0]

    # --- compute -------------------------------------------------------------------
    rows: dict[str, list] = {c: [] for c in _LAYER_COLUMNS}
    reached_rate: dict[tuple[str, float], float] = {("dense", 1.0): 1.0}
    widths = sorted({w for p in platforms for w in config.weight_widths(p)})
    for wb in widths:
        on = [p for p in platforms if wb in config.weight_widths(p)]
        settings = config.settings(wb)
        runs: list[tuple[str, float, Network, list]] = [
            ("dense", 1.0, network, [(p, {"dense": dense}) for p in on])
        ]
        runs += [("sparse", r, network, [(p, {"sparse": sparse[r]}) for p in on]) for r in sweep]
        runs.append(
            (
                NM_KIND,
                nm_rate,
                network,
                [(p, {"nm" if p.compute.nm_sparse is not None else "sparse": nm}) for p in on],
            )
        )
        for r in s_rates:
            s = structured[r]

            def held(layer, profiles=s.profiles) -> MaskProfile:
                return profiles[layer.name]

            runs.append((STRUCTURE, r, s.network, [(p, {"structured": held}) for p in on]))
        for kind, rate, net, pairs in runs:
            per_layer: dict[str, float] = {}
            kept = [0, 0]  # kept and all weights of the simulated layers

            def count(_src, prof, per_layer=per_layer, kept=kept) -> None:
                per_layer[prof.layer_name] = prof.weights / prof.nnz if prof.nnz else math.inf
                kept[0] += prof.nnz
                kept[1] += prof.weights

            estimates = simulate_platforms(net, pairs, settings, on_profile=count)
            reached_rate[(kind, rate)] = kept[1] / kept[0] if kept[0] else math.inf
            for est in estimates:
                _add_rows(rows, est.layers, kind, rate, wb, per_layer)
        tick(f"{wb}-bit")
    layers = pd.DataFrame(rows)
    layers["network"] = work.name
    engines = _main_engines(layers)
    totals, both, ce_rows = against_dense(layers, work.name, reached_rate, scale)

    # --- structured vs non-structured at the verdict's rate, and the verdict ------------
    vs_rows, verdict_rows = [], []
    net_tot = both[both["layer"] == "(network)"]
    for p in platforms:
        for wb in config.weight_widths(p):
            t = net_tot[(net_tot["platform"] == p.name) & (net_tot["weight_bits"] == wb)]
            ns = t[(t["kind"] == "sparse") & (t["rate"] == rate_n)].iloc[0]
            nmr = t[t["kind"] == NM_KIND].iloc[0]
            st = t[t["kind"] == STRUCTURE].sort_values("effective_rate")
            srates = st["effective_rate"].to_numpy()
            same = st[np.isclose(st["rate"], rate_n)].iloc[0]
            lat_same = at_rate(srates, st["latency_s"].to_numpy(), float(ns["effective_rate"]))
            en_same = at_rate(srates, st["energy_j"].to_numpy(), float(ns["effective_rate"]))
            if np.isclose(same["effective_rate"], ns["effective_rate"]):
                lat_same, en_same = float(same["latency_s"]), float(same["energy_j"])
            row = {
                "network": work.name,
                "platform": p.name,
                "platform_class": p.platform_class,
                "weight_bits": wb,
                "nonstructured_rate": rate_n,
                "nonstructured_engine": engines[(p.name, wb, "sparse", rate_n)],
                "structure": STRUCTURE,
                "structured_engine": engines[(p.name, wb, STRUCTURE, rate_n)],
                "speedup_vs_dense": float(ns["speedup"]),
                "energy_ratio_vs_dense": float(ns["energy_ratio"]),
                "structured_rate_matching_latency": first_crossing(
                    srates, st["speedup"].to_numpy(), ns["speedup"], True
                ),
                "structured_rate_matching_energy": first_crossing(
                    srates, st["energy_ratio"].to_numpy(), ns["energy_ratio"], False
                ),
                "structured_rate_searched_from": float(srates[0]),
                "latency_vs_structured_same_rate": float(ns["latency_s"]) / lat_same,
                "energy_vs_structured_same_rate": float(ns["energy_j"]) / en_same,
                **_equal_accuracy_columns(eq, ns, t),
                "nm_engine": engines[(p.name, wb, NM_KIND, nm_rate)],
                "nm_speedup_vs_dense": float(nmr["speedup"]),
                "nm_energy_ratio_vs_dense": float(nmr["energy_ratio"]),
                "blocks_simulated": work.simulated_blocks,
                "blocks": work.total_blocks,
            }
            vs_rows.append(row)
            if wb == config.verdict_width(p) or len(config.weight_widths(p)) == 1:
                verdict_rows.append(row)
    breakdown = totals[
        (totals["kind"] == "dense")
        | ((totals["kind"] == "sparse") & (totals["rate"] == rate_n))
        | ((totals["kind"] == STRUCTURE) & np.isclose(totals["rate"], rate_n))
    ]
    be_rows, curve_rows = _storage(work, config, structured)
    return study_tables(
        storage_breakeven=be_rows,
        storage_curves=curve_rows,
        compute_sweep=both,
        compute_breakeven=ce_rows,
        structured_vs_nonstructured=vs_rows,
        verdict=verdict_rows,
        margin=config.margin,
        energy_breakdown=breakdown,
    )


def _equal_accuracy_columns(eq: EqualAccuracy, ns: pd.Series, t: pd.DataFrame) -> dict:
    """The verdict's equal-accuracy columns: non-structured at the verdict's rate
    (``ns``, a network-total row) against structured pruning simulated at the rate of
    the published figure (a row of ``t``), with the metric, both perplexities and
    their gap (structured minus non-structured). Status ``"compared"`` where the
    structured figure is no worse; ``"structured less accurate"`` where the closest
    one is worse (the ratios then favour structured pruning: an equally accurate
    structured model would keep more weights)."""
    lat = en = eff = math.nan
    if eq.known:
        st = t[(t["kind"] == STRUCTURE) & np.isclose(t["rate"], eq.structured_rate)].iloc[0]
        lat = float(ns["latency_s"]) / float(st["latency_s"])
        en = float(ns["energy_j"]) / float(st["energy_j"])
        eff = float(st["effective_rate"])
    gap = eq.perplexity_gap

    def num(x):
        return math.nan if x is None else float(x)

    return {
        "structured_rate_no_loss": num(eq.structured_rate),
        "structured_effective_rate_equal_accuracy": eff,
        "structured_rate_published": num(eq.published_rate),
        "structured_no_loss_source": eq.source,
        "equal_accuracy": "compared" if eq.status == "matched" else eq.status,
        "accuracy_metric": eq.metric + (f" (seq {eq.seq_len})" if eq.seq_len else ""),
        "nonstructured_perplexity": num(eq.nonstructured_perplexity),
        "structured_perplexity": num(eq.structured_perplexity),
        "perplexity_gap": num(gap),
        "latency_vs_structured_equal_accuracy": lat,
        "energy_vs_structured_equal_accuracy": en,
    }


def _storage(
    work: Workload, config: LLMStudyConfig, structured: Mapping
) -> tuple[list[dict], list[dict]]:
    """Storage break-evens (head and channel pruning against relative-index CSR) and
    storage curves of a workload's model, bits scaled to every block."""
    network, scale = work.network, work.scale
    compact = STRUCTURED_FORMAT["filter"]  # a smaller dense matrix and its survivor lists
    be_rows, curve_rows = [], []
    dense_bits = network.weight_count * scale
    for wb in config.weight_bits:
        for ib in config.index_bits:
            params = FormatParams(weight_bits=wb, index_bits=ib)
            for r in sorted(config.rates):
                for b in storage_breakeven(
                    network, "filter", r, params, "csr-rel", config.seed, structured[r].profiles
                ):
                    row = b.as_dict()
                    row["structure"] = STRUCTURE
                    row["network"] = work.name
                    be_rows.append(row)
            curve_rows += nonstructured_curve(network, work.name, wb, ib, scale)
        params = FormatParams(weight_bits=wb)
        for r in sorted(config.rates):
            s = structured[r]
            bits = sum(format_stats(p, compact, params).total_bits for p in s.profiles.values())
            for ib in config.index_bits:
                curve_rows.append(
                    {
                        "network": work.name,
                        "weight_bits": wb,
                        "index_bits": ib,
                        "rate": float(r),
                        "kind": f"{STRUCTURE} ({compact})",
                        "effective_rate": effective_rate(s.profiles),
                        "bits": bits * scale,
                        "dense_bits": dense_bits * wb,
                    }
                )
    return be_rows, curve_rows
