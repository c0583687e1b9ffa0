"""The three engines of a sweep (serial, a spawned process pool, a Dask LocalCluster)
give identical tables, invalid points included, and every point's hash is the same."""

from __future__ import annotations

import pandas as pd

from simulator.sweep import run_sweep, spec_from_dict

SPEC = spec_from_dict(
    {
        "network": "lenet5",
        "platform": "zcu102",
        "variants": ["structured", "sparse"],
        "pruning": {"rate": 8},
        "sweep": [
            {"parameters": {"pruning.rate": [4, 16]}},
            {
                "mode": "lhs",
                "samples": 9,
                "seed": 3,
                "parameters": {
                    "fpga.device.dsp": {"uniform": [500, 3000]},  # below 2130: invalid
                    "clock_hz": {"log_uniform": [1e8, 4e8]},
                    "memory.ddr4.bandwidth_bytes_per_s": [5e9, 10e9, 20e9],
                },
            },
        ],
    },
    "engines.yaml",
)


def test_serial_pool_and_dask_local_cluster_give_identical_rows(tmp_path):
    tables = {}
    for engine in ("serial", "pool", "dask"):
        result = run_sweep(
            SPEC, tmp_path / engine, engine=engine, jobs=2, batch_size=4, fmt="parquet"
        )
        assert result.computed == 18 and result.jobs == (1 if engine == "serial" else 2)
        tables[engine] = result.table
        pd.testing.assert_frame_equal(
            pd.read_parquet(result.results).astype(dict(result.table.dtypes.astype(str))),
            result.table,
        )
    pd.testing.assert_frame_equal(tables["pool"], tables["serial"])
    pd.testing.assert_frame_equal(tables["dask"], tables["serial"])
    statuses = tables["serial"].groupby("index")["status"].first()
    assert set(statuses) == {"ok", "invalid"}  # both kinds of row, alike everywhere
    assert tables["serial"]["point"].tolist() == [p.key for p in SPEC.points() for _ in range(3)]
