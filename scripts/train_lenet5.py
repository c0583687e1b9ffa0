"""Train, prune and save the LeNet-5 fixtures of tests/fixtures/ (needs torch, scikit-learn,
onnx and safetensors; the tests themselves need none of them).

LeNet-5 in the 430,500-weight form of models/lenet5.yaml (conv 20@5x5, 2x2 max-pool,
conv 50@5x5, 2x2 max-pool, fc 800->500, fc 500->10; input 1x28x28; modules named
conv1, conv2, fc1, fc2) is trained on scikit-learn's bundled 8x8 digits, upscaled
bilinearly to 28x28 (1,347 training and 450 test images, stratified split). Then,
each from the dense model:

- non-structured: global magnitude pruning with ``torch.nn.utils.prune`` in three
  rounds (50 %, 80 %, 90 % of all 430,500 weights), fine-tuned after each round;
- filter: L1 filter pruning (``prune.ln_structured``, dim 0) of conv1 (50 %), conv2
  (50 %) and fc1 (80 % of its output neurons), fc2 kept whole, then fine-tuned.

Fixtures are stored in float16 (a tenth of the size budget each), except the npz and
the small Mul(mask, weight) ONNX file; accuracies are reported for the float32 model
and for the float16-rounded weights that were saved. Run from the repository root:

    python scripts/train_lenet5.py    # writes tests/fixtures/; 1-4 minutes on 2 cores

It prints the accuracies and writes them, with every density, to
tests/fixtures/lenet5_metrics.json (tests/fixtures/README.md quotes them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.utils import prune

LAYERS = ("conv1", "conv2", "fc1", "fc2")


class LeNet5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class MaskedConvs(nn.Module):
    """conv1 and conv2 of the pruned LeNet-5 with their masks applied in the graph, so
    that the exported ONNX holds the pattern Conv(x, Mul(mask, weight))."""

    def __init__(self, weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]):
        super().__init__()
        for name in ("conv1", "conv2"):
            mod = nn.Module()
            mod.weight = nn.Parameter(weights[name + ".weight"].clone())
            mod.bias = nn.Parameter(weights[name + ".bias"].clone())
            mod.register_buffer("mask", masks[name].float().clone())
            setattr(self, name, mod)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in ("conv1", "conv2"):
            mod = getattr(self, name)
            x = F.max_pool2d(F.relu(F.conv2d(x, mod.mask * mod.weight, mod.bias)), 2)
        return x


def digits() -> tuple[torch.Tensor, ...]:
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    y = torch.tensor(data.target, dtype=torch.long)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.25, stratify=data.target, random_state=0)
    return x[tr], y[tr], x[te], y[te]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


@torch.no_grad()
def accuracy_fp16_weights(state: dict[str, torch.Tensor], x, y) -> float:
    """Accuracy with the weights rounded to float16 (what the fixtures hold)."""
    model = LeNet5()
    model.load_state_dict({k: v.half().float() for k, v in state.items()})
    return accuracy(model, x, y)


def weight_modules(model: LeNet5) -> list[tuple[nn.Module, str]]:
    return [(getattr(model, n), "weight") for n in LAYERS]


def masks_of(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {n: (state[n + ".weight"] != 0).numpy() for n in LAYERS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--finetune", type=int, default=8)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = digits()

    dense = LeNet5()
    train(dense, xtr, ytr, args.epochs, 1e-3)
    dense_state = {k: v.clone() for k, v in dense.state_dict().items()}
    acc = {"dense": accuracy(dense, xte, yte)}
    print(f"dense: test accuracy {acc['dense']:.4f}")

    # -- non-structured: global magnitude pruning to 90 % in three rounds
    ns = LeNet5()
    ns.load_state_dict(dense_state)
    done = 0.0
    for target in (0.5, 0.8, 0.9):
        amount = round(430_500 * target) - round(430_500 * done)
        prune.global_unstructured(
            weight_modules(ns), pruning_method=prune.L1Unstructured, amount=amount
        )
        train(ns, xtr, ytr, args.finetune, 5e-4)
        done = target
        print(f"non-structured {target:.0%}: test accuracy {accuracy(ns, xte, yte):.4f}")
    acc["nonstructured"] = accuracy(ns, xte, yte)
    prune_state = {k: v.detach().clone() for k, v in ns.state_dict().items()}
    for mod, name in weight_modules(ns):
        prune.remove(mod, name)
    ns_state = {k: v.detach().clone() for k, v in ns.state_dict().items()}
    acc["nonstructured_fp16"] = accuracy_fp16_weights(ns_state, xte, yte)

    # -- filter pruning: whole output channels / neurons by L1 norm
    fp = LeNet5()
    fp.load_state_dict(dense_state)
    for name, amount in (("conv1", 0.5), ("conv2", 0.5), ("fc1", 0.8)):
        prune.ln_structured(getattr(fp, name), "weight", amount=amount, n=1, dim=0)
    acc["filter_before_finetune"] = accuracy(fp, xte, yte)
    train(fp, xtr, ytr, 2 * args.finetune, 5e-4)
    acc["filter"] = accuracy(fp, xte, yte)
    for name in ("conv1", "conv2", "fc1"):
        prune.remove(getattr(fp, name), "weight")
    fp_state = {k: v.detach().clone() for k, v in fp.state_dict().items()}
    acc["filter_fp16"] = accuracy_fp16_weights(fp_state, xte, yte)
    print(f"filter: test accuracy {acc['filter']:.4f}")

    half = {k: v.half() for k, v in ns_state.items()}
    ns_masks = masks_of(ns_state)
    fp_masks = masks_of(fp_state)
    # float16 must not flush a kept weight to zero, or the reference masks would lie
    assert all((masks_of(half)[n] == ns_masks[n]).all() for n in LAYERS)
    assert all(
        (masks_of({k: v.half() for k, v in fp_state.items()})[n] == fp_masks[n]).all()
        for n in LAYERS
    )
    for n in LAYERS:
        assert (prune_state[n + ".weight_mask"].numpy().astype(bool) == ns_masks[n]).all()

    # 1. torch.nn.utils.prune form (weight_orig + weight_mask), zip format
    torch.save(
        {"state_dict": {k: v.half() for k, v in prune_state.items()}, "epoch": args.epochs},
        out / "lenet5_ns_prune.pt",
    )
    # 2. plain pruned state_dict, legacy (pre-1.6) format
    torch.save(half, out / "lenet5_ns_legacy.pt", _use_new_zipfile_serialization=False)
    # 3. filter-pruned, safetensors
    save_file(
        {k: v.half().contiguous() for k, v in fp_state.items()},
        str(out / "lenet5_filter.safetensors"),
        metadata={"pruning": "filter"},
    )
    # 4. plain pruned state_dict, npz (float32)
    np.savez_compressed(out / "lenet5_ns.npz", **{k: v.numpy() for k, v in ns_state.items()})
    # 5. ONNX: the pruned model with masked weights as plain initializers (float16)
    model16 = LeNet5()
    model16.load_state_dict(ns_state)
    model16 = model16.half().eval()
    torch.onnx.export(
        model16,
        (xte[:1].half(),),
        str(out / "lenet5_ns.onnx"),
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    with torch.no_grad():
        onnx_ok = accuracy(model16.float(), xte, yte)
    assert abs(onnx_ok - acc["nonstructured_fp16"]) < 1e-9
    # 6. a small ONNX with explicit Mul(mask, weight) for conv1 and conv2 (float32)
    mc = MaskedConvs(
        ns_state, {n: prune_state[n + ".weight_mask"].bool() for n in ("conv1", "conv2")}
    )
    mc.conv1.weight.data = prune_state["conv1.weight_orig"].clone()
    mc.conv2.weight.data = prune_state["conv2.weight_orig"].clone()
    torch.onnx.export(
        mc.eval(),
        (xte[:1],),
        str(out / "lenet5_convs_mul.onnx"),
        dynamo=False,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["features"],
    )
    types = [n.op_type for n in onnx.load(str(out / "lenet5_convs_mul.onnx")).graph.node]
    assert types.count("Mul") == 2, types

    # 7. NVIDIA ASP naming (apex is not installed here): 2:4 masks as ASP's m4n2_1d
    # computes them (linear: groups of 4 along the input features; conv: groups of 4
    # along the input channels), bool buffers "__weight_mma_mask" beside the masked
    # weight. conv2 and fc2 only, so conv1 and fc1 are missing from this file.
    asp: dict[str, torch.Tensor] = {}
    asp_masks = {}
    for n in ("conv2", "fc2"):
        w = dense_state[n + ".weight"]
        t = w.permute(2, 3, 0, 1).reshape(-1, w.shape[1]) if w.ndim == 4 else w
        g = t.abs().reshape(t.shape[0], -1, 4)
        keep = torch.zeros_like(g, dtype=torch.bool)
        keep.scatter_(2, g.topk(2, dim=2).indices, True)
        keep = keep.reshape(t.shape)
        if w.ndim == 4:
            keep = keep.reshape(w.shape[2], w.shape[3], w.shape[0], w.shape[1])
            keep = keep.permute(2, 3, 0, 1).contiguous()
        asp[n + ".weight"] = (w * keep).half()
        asp[n + ".bias"] = dense_state[n + ".bias"].half()
        asp[n + ".__weight_mma_mask"] = keep
        asp_masks[n] = keep.numpy()
    torch.save(asp, out / "lenet5_asp.pt")

    # 8. torch.ao.pruning keeps its masks outside the state_dict (fc2 only, tiny)
    from torch.ao.pruning import WeightNormSparsifier

    small = nn.Sequential()
    small.add_module("fc2", nn.Linear(500, 10))
    small.fc2.load_state_dict(
        {"weight": dense_state["fc2.weight"], "bias": dense_state["fc2.bias"]}
    )
    sparsifier = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 4))
    sparsifier.prepare(small, [{"tensor_fqn": "fc2.weight"}])
    sparsifier.step()
    torch.save({k: v.half() for k, v in small.state_dict().items()}, out / "lenet5_ao_fc2.pt")

    # reference masks, from torch, for the tests
    np.savez_compressed(
        out / "lenet5_masks.npz",
        **{f"nonstructured/{n}": m for n, m in ns_masks.items()},
        **{f"filter/{n}": m for n, m in fp_masks.items()},
        **{f"asp/{n}": m for n, m in asp_masks.items()},
    )

    def dens(masks: dict[str, np.ndarray]) -> dict:
        kept = {n: int(m.sum()) for n, m in masks.items()}
        return {
            "kept": kept,
            "total_kept": sum(kept.values()),
            "total_density": sum(kept.values()) / sum(m.size for m in masks.values()),
        }

    metrics = {
        "command": "python scripts/train_lenet5.py",
        "torch": torch.__version__,
        "data": "sklearn.datasets.load_digits, 8x8 upscaled to 28x28; 1347 train / 450 test",
        "accuracy": acc,
        "nonstructured": dens(ns_masks),
        "filter": dens(fp_masks),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "lenet5_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    for p in sorted(out.iterdir()):
        print(f"{p.stat().st_size:>10,}  {p.name}")


if __name__ == "__main__":
    main()
