"""Counts shared between hardware points: a field the sweep treats as price-only moves
no count of any layer on any built-in profile, and rows priced from shared counts are
the rows of a simulation of the point itself."""

from __future__ import annotations

import copy

import pytest

from simulator.errors import ConfigError
from simulator.hwconfig import ENERGY_FIELDS, PRECISIONS, builtin_platforms, load_platform
from simulator.masks import Pruning
from simulator.settings import Settings
from simulator.simulate import estimate_variants, prepare_profiles, simulate_network
from simulator.sweep import spec_from_dict
from simulator.sweep.evaluate import Context, _totals, build_platform, evaluate
from simulator.sweep.shared import price_only
from simulator.workloads import load_network

NET = load_network("alexnet")


def _paths(raw: dict) -> list[str]:
    """Every priced key path of a profile: each memory level's bandwidth and energies,
    the clock, and every energy field (given or not)."""
    out = ["clock_hz"]
    for level in raw["memory"]:
        for key in ("bandwidth_bytes_per_s", "bandwidth_bits_per_cycle"):
            if key in level:
                out.append(f"memory.{level['name']}.{key}")
        out += [f"memory.{level['name']}.{k}" for k in ("read_pj_per_bit", "write_pj_per_bit")]
    out += [f"energy.mac_pj.{p}" for p in PRECISIONS]
    out += [f"energy.{k}" for k in ENERGY_FIELDS if k != "mac_pj"]
    return out


def _value(raw: dict, path: str, factor: float) -> float:
    node = raw
    for part in path.split(".")[:-1]:
        node = next(m for m in node if m["name"] == part) if isinstance(node, list) else node[part]
    old = node.get(path.rsplit(".", 1)[-1])
    return (old if old else 0.5) * factor


@pytest.mark.slow
@pytest.mark.parametrize("name", list(builtin_platforms()))
def test_price_only_fields_move_no_count(name):
    base = load_platform(name)
    raw = dict(base.raw)
    fields = [p for p in _paths(raw) if price_only(p, base)]
    variants = estimate_variants(base, Pruning(density=1 / 8), "filter")
    profiles = prepare_profiles(NET, variants)
    settings = Settings(weight_bits=8)
    counts = [r.counts for r in simulate_network(NET, base, profiles, settings).layers]
    checked = 0
    for path in fields:
        for factor in (8.0, 1 / 8):
            try:
                other = build_platform(raw, [(path, _value(raw, path, factor))], "perturbed")
            except ConfigError:
                continue  # not a field this profile may have
            moved = simulate_network(NET, other, profiles, settings).layers
            assert [r.counts for r in moved] == counts, f"{path} x {factor} moved a count"
            checked += 1
    if base.execution in ("eie", "scnn", "roofline") and base.fpga is None:
        assert checked >= 10  # most priced fields only price here


def test_which_fields_are_price_only():
    eie, a100, zcu102 = (load_platform(n) for n in ("eie", "a100", "zcu102"))
    assert price_only("clock_hz", eie) and price_only("memory.dram.bandwidth_bytes_per_s", eie)
    assert price_only("energy.mac_pj.int16", eie) and price_only("energy.static_w", eie)
    assert not price_only("energy.pointer_read_pj", eie)  # EIE counts pointer reads by it
    assert not price_only("compute.pes", eie) and not price_only("memory.spmat.size_bytes", eie)
    assert price_only("memory.hbm2.read_pj_per_bit", a100)
    assert not price_only("clock_hz", a100)  # the roofline's cycles
    assert not price_only("memory.hbm2.bandwidth_bytes_per_s", a100)  # GEMV streams
    assert not price_only("clock_hz", zcu102)  # a mapped systolic array chooses by it
    assert not price_only("energy.mac_pj.int8", load_platform("eyeriss_v1"))


@pytest.mark.parametrize(
    ("platform", "parameters"),
    [
        (
            "eie",
            {
                "compute.pes": [32, 64],
                "clock_hz": [4e8, 8e8],
                "memory.dram.bandwidth_bytes_per_s": [1e9, 3.4e10],
                "memory.spmat.read_pj_per_bit": [0.3, 0.66],
            },
        ),
        (
            "a100",
            {
                "memory.hbm2.bandwidth_bytes_per_s": [1e12, 2e12],
                "energy.static_w": [10.0, 50.0],
                "energy.mac_pj.int8": [0.1, 0.4],
            },
        ),
    ],
)
def test_rows_from_shared_counts_are_the_points_own(platform, parameters):
    spec = spec_from_dict(
        {
            "network": "alexnet",
            "platform": platform,
            "variants": ["structured", "sparse"],
            "sweep": {"parameters": parameters},
        },
        "x",
    )
    context = Context()
    table = evaluate(spec, spec.points(), context)
    raw = dict(load_platform(platform).raw)
    net = load_network("alexnet")
    for point in spec.points():
        hardware = [(p, v) for p, v in point.values if p in parameters]
        own = build_platform(copy.deepcopy(raw), hardware, "own")
        variants = {
            "dense": Pruning(structure="dense"),
            **{
                k: v
                for k, v in estimate_variants(own, Pruning(density=1 / 8), "filter").items()
                if k in ("structured", "sparse")
            },
        }
        layers = simulate_network(net, own, prepare_profiles(net, variants), Settings()).layers
        rows = table[table["point"] == point.key].set_index("variant")
        for v in variants:
            expected = _totals([r.record() for r in layers if r.variant == v])
            for column in ("latency_s", "energy_j", "energy_dram_j", "dram_bits", "main_bound"):
                assert rows.loc[v, column] == expected[column], (point.values, v, column)
    assert len(context.counts) < len(spec.points())  # counts were shared


@pytest.mark.parametrize("name", [*builtin_platforms(), "scalesim_32x32_ws+scalesim"])
def test_price_points_are_price_bit_for_bit(name, rng):
    """Every priced field scaled at random on each of five platforms: each layer's
    figures from PricePoints are price()'s, exactly (and SCALE-Sim's model, where
    bandwidth never stalls)."""
    from simulator.cost import PricePoints, price

    name, _, model = name.partition("+")
    base = load_platform(name)
    if model:
        base = build_platform(dict(base.raw), [("compute.dram_model", model)], "scalesim")
    raw = dict(base.raw)
    paths = [p for p in _paths(raw) if p.split(".")[-1] in _existing(raw, p)]
    platforms = [base]
    for _ in range(4):
        hardware = [(p, _value(raw, p, float(rng.uniform(0.1, 10)))) for p in paths]
        platforms.append(build_platform(raw, hardware, "scaled"))
    prices = PricePoints(tuple(platforms))
    variants = estimate_variants(base, Pruning(density=1 / 8), "filter")
    profiles = prepare_profiles(NET, variants)
    for r in simulate_network(NET, base, profiles, Settings(weight_bits=8)).layers:
        for wb, ab in ((8, 8), (4, 16)):
            many = prices.price(r.counts, wb, ab)
            for j, p in enumerate(platforms):
                one = price(r.counts, p, wb, ab)
                for key, values in many.items():
                    assert values[j] == getattr(one, key), (name, r.layer, key)


def _existing(raw: dict, path: str) -> set[str]:
    """The keys present where ``path`` ends (only given fields are scaled)."""
    node = raw
    for part in path.split(".")[:-1]:
        node = next(m for m in node if m["name"] == part) if isinstance(node, list) else node[part]
    return set(node)
