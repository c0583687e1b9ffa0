"""Tables that load: every file `prunesim study` writes into ``tables/`` reads back
with ``pd.read_json`` / ``pd.read_csv`` into typed columns (no "inf" strings), with a
``<column>_status`` (exact / never / at_most) beside each number that can be
infinite or only an upper bound; the CLI's JSON is standard JSON."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.cli import main
from simulator.report import STATUSES, for_file, records, write_csv, write_frame_json, write_json
from simulator.study import TABLES, StudyConfig, run_study
from simulator.study.output import REAL_VS_IID_COLUMNS, file_status, write_tables

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONFIG = StudyConfig(
    networks=("lenet5",),
    platforms=("eie", "a100", "scalesim_32x32_ws"),
    checkpoints={"lenet5": str(FIXTURES / "lenet5_ns_prune.pt")},  # real_vs_iid has rows
)
STATUS_COLUMNS = {
    "storage_breakeven": ("nonstructured_rate", "ratio", "closed_form_ratio"),
    "compute_breakeven": ("latency_breakeven_rate", "energy_breakeven_rate"),
    "structured_vs_nonstructured": (
        "structured_rate_matching_latency",
        "structured_rate_matching_energy",
    ),
    "verdict": ("structured_rate_matching_latency", "structured_rate_matching_energy"),
}
"""The columns that carry a status, as write_tables' docstring and the README name them."""


def strict_json(text: str):
    """json.loads refusing NaN and Infinity (not standard JSON)."""

    def refuse(constant):
        raise ValueError(f"not standard JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    result = run_study(CONFIG, out, jobs=1)
    write_tables(result)
    return result


def _upper_bounds(name: str, mem: pd.DataFrame, column: str) -> np.ndarray:
    """Rows where ``column`` is only an upper bound, worked out here from the study's
    grids: the mildest rate searched already reaches it."""
    x = mem[column].to_numpy(dtype=float)
    if name == "compute_breakeven":  # the sweep's rates (the checkpoint's 10x is above)
        return x == min(CONFIG.sweep_rates)
    if name == "storage_breakeven":  # every weight kept
        return x == 1.0
    return x == mem["structured_rate_searched_from"].to_numpy(dtype=float)


def test_every_table_loads_with_typed_columns_and_statuses(study):
    folder = study.out_dir / "tables"
    seen = {status: set() for status in STATUSES}
    for name in TABLES:
        mem = study.tables[name]
        assert len(mem), f"{name}: the test study should fill every table"
        doc = strict_json((folder / f"{name}.json").read_text(encoding="utf-8"))
        assert isinstance(doc, list) and all(isinstance(r, dict) for r in doc), name
        assert not re.search(r"(^|,)-?inf(,|$)", (folder / f"{name}.csv").read_text(), re.M)
        status_cols = STATUS_COLUMNS.get(name, ())
        expected = []
        for c in mem.columns:
            expected += [c, f"{c}_status"] if c in status_cols else [c]
        from_json = pd.read_json(folder / f"{name}.json")
        from_csv = pd.read_csv(folder / f"{name}.csv")
        exact = pd.DataFrame(doc)  # json.load: floats exactly as written
        for got in (from_json, from_csv, exact):
            assert list(got.columns) == expected, name
            assert len(got) == len(mem), name
        numeric = mem.select_dtypes(include=["number", "bool"]).columns
        for c in numeric:
            for got in (from_json, from_csv):
                assert got[c].dtype.kind in "iufb", (name, c, got[c].dtype)
                got[c].median()  # "never" used to be the string "inf": TypeError
            x = mem[c].to_numpy(dtype=float)
            finite = np.isfinite(x)
            e = exact[c].to_numpy(dtype=float)
            assert np.array_equal(e[finite], x[finite]), (name, c)  # to the last digit
            for got in (from_json, from_csv):
                np.testing.assert_allclose(got[c].to_numpy(dtype=float)[finite], x[finite], 1e-12)
                assert got[c][~finite].isna().all(), (name, c)
        for c in status_cols:
            x = mem[c].to_numpy(dtype=float)
            never = np.isinf(x)
            bound = _upper_bounds(name, mem, c) & ~never
            if c == "closed_form_ratio":  # a formula's value at the density found
                bound[:] = False
            want = np.where(never, "never", np.where(bound, "at_most", "exact"))
            for got in (from_json, from_csv):
                status = got[f"{c}_status"]
                assert set(status) <= set(STATUSES), (name, c)
                assert list(status) == list(want), (name, c)
                assert got[c][never].isna().all() and got[c][~never].notna().all()
            seen_here = set(want)
            for s in seen_here:
                seen[s].add((name, c))
    # the statuses the format exists for occur here, so the checks above bite
    assert ("compute_breakeven", "latency_breakeven_rate") in seen["never"]
    assert ("storage_breakeven", "nonstructured_rate") in seen["never"]
    assert ("compute_breakeven", "latency_breakeven_rate") in seen["at_most"]
    assert ("verdict", "structured_rate_matching_latency") in seen["at_most"]
    # and the in-memory tables keep their infinities (report and verdict use them)
    assert np.isinf(study.tables["compute_breakeven"]["latency_breakeven_rate"]).any()


def test_median_of_a_break_even_over_the_rates_reached(study):
    """The question the old files could not answer without cleaning: the median
    break-even where there is one, and how many never break even."""
    path = study.out_dir / "tables" / "compute_breakeven"
    for t in (pd.read_json(path.with_suffix(".json")), pd.read_csv(path.with_suffix(".csv"))):
        reached = t[t["latency_breakeven_rate_status"] != "never"]
        assert math.isfinite(reached["latency_breakeven_rate"].median())
        assert (t["latency_breakeven_rate_status"] == "never").sum() == int(
            np.isinf(study.tables["compute_breakeven"]["latency_breakeven_rate"]).sum()
        )


def test_an_empty_real_vs_iid_still_loads(study, tmp_path):
    """Without checkpoints real_vs_iid has no rows; its CSV keeps the header."""
    tables = {**study.tables, "real_vs_iid": pd.DataFrame()}
    empty = dataclasses.replace(study, tables=tables, out_dir=tmp_path)
    write_tables(empty)
    assert list(study.tables["real_vs_iid"].columns) == list(REAL_VS_IID_COLUMNS)
    frame = pd.read_csv(tmp_path / "tables" / "real_vs_iid.csv")
    assert list(frame.columns) == list(REAL_VS_IID_COLUMNS) and frame.empty
    assert strict_json((tmp_path / "tables" / "real_vs_iid.json").read_text()) == []
    assert pd.read_json(tmp_path / "tables" / "real_vs_iid.json").empty


def test_file_status_names_the_documented_columns(study):
    for name in TABLES:
        assert tuple(file_status(name, study.tables)) == STATUS_COLUMNS.get(name, ()), name


def test_writers_hold_no_infinity_and_keep_the_frame(tmp_path):
    frame = pd.DataFrame(
        {
            "rate": [2.0, math.inf, 1.5, math.nan],
            "reached": [1.0, math.inf, 3.0, 4.0],  # no status: an infinity as NaN
            "n": [1, 2, 3, 4],
            "ok": [True, False, True, False],
            "tiny": [1.23456789012345e-12, 2.0, 3.0, 4.0],
        }
    )
    before = frame.copy()
    at_most = {"rate": pd.Series([False, False, True, False])}
    out = for_file(frame, at_most)
    pd.testing.assert_frame_equal(frame, before)  # the frame in memory is untouched
    assert list(out.columns) == ["rate", "rate_status", "reached", "n", "ok", "tiny"]
    assert list(out["rate_status"]) == ["exact", "never", "at_most", None]
    assert out["rate"].isna().tolist() == [False, True, False, True]
    assert out["reached"].isna().tolist() == [False, True, False, False]
    write_frame_json(tmp_path / "t.json", frame, at_most)
    write_csv(tmp_path / "t.csv", frame, at_most)
    doc = strict_json((tmp_path / "t.json").read_text())
    assert doc[1]["rate"] is None and doc[1]["rate_status"] == "never"
    assert doc[0]["tiny"] == 1.23456789012345e-12  # every digit (to_json kept 4 here)
    assert doc[0]["n"] == 1 and doc[0]["ok"] is True
    csv = pd.read_csv(tmp_path / "t.csv")
    assert csv["rate"].dtype == np.float64 and csv["reached"].dtype == np.float64
    assert list(csv["rate_status"].fillna("")) == ["exact", "never", "at_most", ""]
    write_json(tmp_path / "d.json", {"x": math.inf, "t": records(frame, at_most)})
    doc = strict_json((tmp_path / "d.json").read_text())
    assert doc["x"] is None and doc["t"][1]["rate_status"] == "never"
    assert write_frame_json(tmp_path / "e.json", pd.DataFrame()).read_text() == "[]\n"


def _cli(*argv: str) -> int:
    with redirect_stdout(io.StringIO()):
        return main(list(argv))


def test_storage_json_and_csv_say_never_and_at_most(tmp_path):
    """The storage break-even of `prunesim storage` in the same form as the study's:
    never (filter pruning at 300x: no rate common to every layer, down to one weight
    kept in the smallest, stores the whole network in as few bits) and at most (1x1
    blocks cost an absolute index per weight, so relative-index CSR with every
    weight kept already stores in as few bits)."""
    cases = {
        "never": ("lenet5", "--structure", "filter", "--rate", "300"),
        "at_most": ("lenet5", "--structure", "block", "--block", "1x1", "--rate", "1.2"),
    }
    for status, args in cases.items():
        j, c = tmp_path / f"{status}.json", tmp_path / f"{status}.csv"
        assert _cli("storage", *args, "--json", str(j), "--csv", str(c)) == 0
        doc = strict_json(j.read_text())
        be = pd.DataFrame(doc["breakeven"])
        assert set(be["nonstructured_rate_status"]) <= set(STATUSES)
        rows = be[be["nonstructured_rate_status"] == status]
        assert len(rows), status
        assert (rows["ratio_status"] == status).all()
        if status == "never":
            assert rows["nonstructured_rate"].isna().all()
        else:
            assert (rows["nonstructured_rate"] == 1.0).all()
        csv = pd.read_csv(tmp_path / f"{status}-breakeven.csv")
        assert csv["nonstructured_rate"].dtype == np.float64
        assert list(csv["nonstructured_rate_status"]) == list(be["nonstructured_rate_status"])


def test_estimate_and_inspect_json_are_standard(tmp_path):
    assert (
        _cli("estimate", "lenet5", "--platform", "eie,a100", "--json", str(tmp_path / "e.json"))
        == 0
    )
    doc = strict_json((tmp_path / "e.json").read_text())
    assert pd.DataFrame(doc["totals"])["speedup"].dtype == np.float64
    path = str(FIXTURES / "lenet5_ns_prune.pt")
    assert _cli("inspect", path, "--model", "lenet5", "--json", str(tmp_path / "i.json")) == 0
    strict_json((tmp_path / "i.json").read_text())
