"""Transformer networks from Hugging Face ``config.json`` files, at a prefill or
decode phase.

Families (``model_type``): ``llama``, ``mistral``, ``qwen2`` (gated MLP, RMS norms,
grouped-query attention), ``opt``, ``gpt2`` (biases, layer norms, learned
positions) and ``bert`` (an encoder: prefill only). Layer names are those of the
Hugging Face state dict (``model.layers.N.self_attn.q_proj``,
``model.decoder.layers.N.fc1``, ``transformer.h.N.attn.c_attn``,
``encoder.layer.N.attention.self.query``), so a checkpoint's tensors match them.

**Layers.** Every weight matrix applied per token is a :class:`Linear` layer
(``tokens`` = batch x sequence length in prefill, = batch in decode); the k and v
projections are sized by the key/value heads. The two attention products of each
block are :class:`MatMul` layers named ``...scores`` (Q K^T) and ``...context``
(P V). Grouped-query attention is written the way its kernels run it: one product
per key/value head (``heads`` = KV heads, ``batch`` = batch), the query heads that
share it folded into the rows (``m`` = query heads per KV head x query tokens). So
the second operand of each product is exactly the K (or V) cache that one step
reads: ``batch x kv_heads x head_dim x keys`` elements, and the MACs are those of
all query heads. Prefill computes every query against every key (``keys`` = the
sequence length, no causal halving, as a dense kernel does); decode attends to
``context`` keys (the cache, the new token's own key included), or to Mistral's
``sliding_window`` when that is shorter.

**Parameters.** :func:`parameter_count` counts every parameter of the Hugging Face
model (``AutoModel`` for BERT, pooler included; ``...ForCausalLM`` otherwise):
weight matrices, biases, norm weights and biases, embedding tables, and the LM
head once (a tied head shares the token embedding). Only the matrices applied per
token are layers; the rest (embeddings are table look-ups, not products; biases
and norms are elementwise) is :attr:`DecoderBuild.other_param_count`, which the
network adds to its parameter total but never prunes or computes. The LM head is
a layer when it is untied, or when asked for (``lm_head=True``; a tied head then
carries the shared embedding matrix and the table is not counted twice);
``lm_head=False`` leaves it out of the layers whatever the tying. The parameter
total is the same either way.

**The KV cache.** In a decoder (every family but BERT), ``k_proj`` and ``v_proj``
write all their outputs to the KV cache (``Linear.kv_out_features`` = their
``out_features``; GPT-2's fused ``c_attn`` writes exactly its K and V thirds,
``2 x hidden`` of its ``3 x hidden`` outputs), and both attention products read
their second operand from it (``MatMul.kv_operand``), in both phases: in decode
the keys and values are the cache; in prefill they are the sequence's own K and V,
which the projections have just written to the cache and the attention reads back
as stored (as paged-attention kernels do), so at the cache's precision too. A
prefill kernel that attends over the projections' full-precision outputs and
writes the cache beside it is not modelled. Engines price the cached elements at
``Settings.kv_bits`` and the rest at the activation precision, and each layer's
result counts ``kv_read_bits``/``kv_write_bits``; where the cache lives is the
engine's usual rule for inputs and outputs (DRAM on a roofline): a cache kept on
chip between steps is not modelled. BERT (an encoder) has no cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, LayerError, shown
from simulator.layers import Layer, Linear, MatMul
from simulator.yamlio import read_text_bounded, value_problems

MAX_CONFIG_BYTES = 1 * 2**20
"""Largest ``config.json`` read (bytes); real ones are 1-3 KB."""
_MAX = 2**31  # largest size of one dimension (see layers.py)

FAMILIES = ("bert", "gpt2", "llama", "mistral", "opt", "qwen2")
"""``model_type`` values read."""
PHASES = ("prefill", "decode")


@dataclass(frozen=True, kw_only=True)
class Phase:
    """Which inference step the network describes.

    ``prefill``: ``batch`` sequences of ``seq_len`` tokens each. ``decode``: one new
    token for each of ``batch`` sequences, attending to ``context`` positions (the
    cached keys and values, the new token's included). ``lm_head``: ``None`` keeps
    the LM head as a layer when it is untied, ``True`` always, ``False`` never.
    """

    kind: str = "prefill"
    seq_len: int = 128
    batch: int = 1
    context: int = 512
    lm_head: bool | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in PHASES:
            problems.append(f"phase {shown(self.kind)!r}: expected one of {', '.join(PHASES)}")
        for key in ("seq_len", "batch", "context"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= _MAX:
                problems.append(f"{key}={shown(v)}: expected an integer in [1, 2**31]")
        if self.lm_head not in (None, True, False):
            problems.append(f"lm_head={shown(self.lm_head)}: expected true, false or none")
        if problems:
            raise ConfigError("phase", problems)

    def describe(self) -> str:
        if self.kind == "prefill":
            return f"prefill of {self.seq_len} tokens x batch {self.batch}"
        return f"decode of 1 token x batch {self.batch} at context {self.context}"


@dataclass(frozen=True, kw_only=True)
class HFConfig:
    """The fields of a ``config.json`` that set the network's shapes, validated.
    Sizes in elements."""

    source: str
    family: str
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    layers: int
    vocab: int
    max_positions: int
    tied: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    sliding_window: int | None = None
    type_vocab: int = 0
    final_norm: bool = True

    @property
    def gated(self) -> bool:
        """Gated MLP (gate, up, down) rather than two matrices."""
        return self.family in ("llama", "mistral", "qwen2")

    @property
    def encoder(self) -> bool:
        return self.family == "bert"


@dataclass(frozen=True, kw_only=True)
class DecoderBlock:
    """The layers of one transformer block by role, and the sizes that tie them: the
    producer links that structured pruning of heads and MLP channels follows
    (:mod:`simulator.llmprune`). Sizes in elements.

    Attention: ``q``, ``k``, ``v`` (``None`` where the block has one fused ``qkv``
    projection, GPT-2's ``c_attn``: rows q | k | v) write ``heads`` (k and v:
    ``kv_heads``) heads of ``head_dim`` rows each, head ``h`` in rows ``h*head_dim`` to
    ``(h+1)*head_dim - 1``; the products ``scores`` and ``context`` run once per KV
    head; ``o`` reads the heads' outputs in the same order (its columns). MLP:
    ``up`` (and ``gate`` where gated) write ``intermediate`` channels, one per row,
    which ``down`` reads as its columns."""

    index: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    q: str | None
    k: str | None
    v: str | None
    qkv: str | None
    o: str
    scores: str
    context: str
    gate: str | None
    up: str
    down: str


@dataclass(frozen=True, kw_only=True)
class DecoderBuild:
    """A network built from a config: its layers, the parameters that are not in
    them (embeddings, biases, norms; elements) and a one-line description."""

    layers: tuple[Layer, ...]
    other_param_count: int
    description: str
    stored_transposed: tuple[str, ...] = ()
    """Layers whose checkpoints store ``(in, out)`` weights (GPT-2's ``Conv1D``)."""
    blocks: tuple[DecoderBlock, ...] = ()
    """Each transformer block's layers by role (:class:`DecoderBlock`)."""


# --- reading ----------------------------------------------------------------------------

# per family: field -> config key (and default, or _REQUIRED)
_REQUIRED = object()
_KEYS: dict[str, dict[str, tuple[str, Any]]] = {
    "llama": {
        "hidden": ("hidden_size", _REQUIRED),
        "intermediate": ("intermediate_size", _REQUIRED),
        "heads": ("num_attention_heads", _REQUIRED),
        "kv_heads": ("num_key_value_heads", None),
        "head_dim": ("head_dim", None),
        "layers": ("num_hidden_layers", _REQUIRED),
        "vocab": ("vocab_size", _REQUIRED),
        "max_positions": ("max_position_embeddings", _REQUIRED),
        "tied": ("tie_word_embeddings", False),
        "attention_bias": ("attention_bias", False),
        "mlp_bias": ("mlp_bias", False),
    },
    "opt": {
        "hidden": ("hidden_size", _REQUIRED),
        "intermediate": ("ffn_dim", _REQUIRED),
        "heads": ("num_attention_heads", _REQUIRED),
        "layers": ("num_hidden_layers", _REQUIRED),
        "vocab": ("vocab_size", _REQUIRED),
        "max_positions": ("max_position_embeddings", _REQUIRED),
        "tied": ("tie_word_embeddings", True),
        "enable_bias": ("enable_bias", True),
        "do_layer_norm_before": ("do_layer_norm_before", True),
        "word_embed_proj_dim": ("word_embed_proj_dim", None),
    },
    "gpt2": {
        "hidden": ("n_embd", _REQUIRED),
        "intermediate": ("n_inner", None),
        "heads": ("n_head", _REQUIRED),
        "layers": ("n_layer", _REQUIRED),
        "vocab": ("vocab_size", _REQUIRED),
        "max_positions": ("n_positions", _REQUIRED),
        "tied": ("tie_word_embeddings", True),
    },
    "bert": {
        "hidden": ("hidden_size", _REQUIRED),
        "intermediate": ("intermediate_size", _REQUIRED),
        "heads": ("num_attention_heads", _REQUIRED),
        "layers": ("num_hidden_layers", _REQUIRED),
        "vocab": ("vocab_size", _REQUIRED),
        "max_positions": ("max_position_embeddings", _REQUIRED),
        "type_vocab": ("type_vocab_size", 2),
    },
}
_KEYS["mistral"] = {**_KEYS["llama"], "sliding_window": ("sliding_window", None)}
del _KEYS["mistral"]["attention_bias"], _KEYS["mistral"]["mlp_bias"]
_KEYS["qwen2"] = {
    **_KEYS["mistral"],
    "use_sliding_window": ("use_sliding_window", False),
}
_BOOLS = {
    "tied",
    "attention_bias",
    "mlp_bias",
    "enable_bias",
    "do_layer_norm_before",
    "use_sliding_window",
}
_OPTIONAL_INTS = {"kv_heads", "head_dim", "intermediate", "sliding_window", "word_embed_proj_dim"}


def read_hf_config(path: str | Path) -> HFConfig:
    """Read and validate a ``config.json`` (or the one in a folder). Every problem is
    reported at once in a :class:`ConfigError` naming the file and each key."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    text = read_text_bounded(path, MAX_CONFIG_BYTES)
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError) as e:
        raise ConfigError(str(path), f"not valid JSON: {shown(str(e), 160)}") from None
    except RecursionError:
        raise ConfigError(str(path), "not valid JSON: nested too deeply") from None
    return hf_config_from_dict(data, str(path))


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number allowed here")


def hf_config_from_dict(data: Any, source: str) -> HFConfig:
    """Validate a parsed ``config.json`` mapping (``source`` names it in errors).

    Keys prunesim does not use are ignored (a config.json holds many: rope, dtype,
    token ids); the keys it uses must have the right type and range."""
    if not isinstance(data, dict):
        raise ConfigError(source, f"expected a JSON object (a config.json), got {_kind(data)}")
    problems = value_problems(data)
    if problems:
        raise ConfigError(source, problems)
    family = data.get("model_type")
    if family not in _KEYS:
        raise ConfigError(
            source,
            f"model_type: expected one of {', '.join(FAMILIES)}, got "
            + (repr(shown(family, 40)) if family is not None else "no model_type"),
        )
    v: dict[str, Any] = {}
    for field, (key, default) in _KEYS[family].items():
        if key not in data or (data[key] is None and default is not _REQUIRED):
            if default is _REQUIRED:
                problems.append(f"{key}: missing (required for model_type {family})")
            v[field] = default
            continue
        x = data[key]
        if field in _BOOLS:
            if not isinstance(x, bool):
                problems.append(f"{key}: expected true or false, got {shown(x, 40)}")
            v[field] = x
        elif isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= _MAX:
            problems.append(f"{key}: expected a positive integer up to 2**31, got {shown(x, 40)}")
        else:
            v[field] = x
    if problems:
        raise ConfigError(source, problems)
    keys = _KEYS[family]
    hidden, heads = v["hidden"], v["heads"]
    if family == "gpt2" and v["intermediate"] is None:
        v["intermediate"] = 4 * hidden  # GPT-2: n_inner null means 4 x n_embd
    kv = v.get("kv_heads") or heads
    if heads % kv:
        problems.append(
            f"{keys['kv_heads'][0]}: {kv} does not divide num_attention_heads ({heads}); "
            "expected a divisor (grouped-query attention)"
        )
    head_dim = v.get("head_dim")
    if head_dim is None:
        if hidden % heads:
            problems.append(
                f"{keys['heads'][0]}: {heads} does not divide {keys['hidden'][0]} ({hidden}); "
                "expected a divisor (or give head_dim)"
            )
        head_dim = max(hidden // heads, 1)
    if family == "opt":
        if v["word_embed_proj_dim"] not in (None, hidden):
            problems.append(
                f"word_embed_proj_dim: {v['word_embed_proj_dim']} differs from hidden_size "
                f"({hidden}); expected them equal (OPT's project_in/out are not modelled)"
            )
    if problems:
        raise ConfigError(source, problems)
    window = v.get("sliding_window")
    if family == "qwen2" and not v.get("use_sliding_window"):
        window = None
    attn_bias = bool(v.get("attention_bias"))
    biased = family in ("opt", "gpt2", "bert") and v.get("enable_bias", True)
    return HFConfig(
        source=source,
        family=family,
        hidden=hidden,
        intermediate=v["intermediate"],
        heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        layers=v["layers"],
        vocab=v["vocab"],
        max_positions=v["max_positions"],
        tied=bool(v.get("tied", False)),
        qkv_bias=bool(attn_bias or biased or family == "qwen2"),
        o_bias=bool(attn_bias or biased),
        mlp_bias=bool(v.get("mlp_bias") or biased),
        sliding_window=window,
        type_vocab=v.get("type_vocab", 0),
        final_norm=family != "bert" and v.get("do_layer_norm_before", True),
    )


def _kind(x: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null"}.get(type(x), "a number")


# --- counting and building --------------------------------------------------------------


def parameter_count(c: HFConfig) -> int:
    """Every parameter of the Hugging Face model (elements), the LM head once."""
    h, d = c.hidden, c.head_dim
    q, kv = c.heads * d, c.kv_heads * d
    norm = h if c.family in ("llama", "mistral", "qwen2") else 2 * h  # RMS: weight only
    attn = h * q + 2 * h * kv + q * h
    attn += (q + 2 * kv) * c.qkv_bias + h * c.o_bias
    n_mlp = 3 if c.gated else 2
    mlp = n_mlp * h * c.intermediate + ((n_mlp - 1) * c.intermediate + h) * c.mlp_bias
    block = attn + mlp + 2 * norm
    embed = c.vocab * h
    if c.family == "opt":
        embed += (c.max_positions + 2) * h  # OPT's learned positions are offset by 2
    elif c.family in ("gpt2", "bert"):
        embed += c.max_positions * h
    if c.family == "bert":
        embed += c.type_vocab * h + 2 * h  # token types, embedding layer norm
        return embed + c.layers * block + h * h + h  # pooler
    head = 0 if c.tied else c.vocab * h
    return embed + c.layers * block + norm * c.final_norm + head


def _names(c: HFConfig, i: int) -> dict[str, str]:
    if c.family == "opt":
        p = f"model.decoder.layers.{i}."
        a = p + "self_attn."
        return dict(
            q=a + "q_proj", k=a + "k_proj", v=a + "v_proj", o=a + "out_proj",
            scores=a + "scores", context=a + "context", up=p + "fc1", down=p + "fc2",
        )  # fmt: skip
    if c.family == "gpt2":
        p = f"transformer.h.{i}."
        return dict(
            qkv=p + "attn.c_attn", o=p + "attn.c_proj", scores=p + "attn.scores",
            context=p + "attn.context", up=p + "mlp.c_fc", down=p + "mlp.c_proj",
        )  # fmt: skip
    if c.family == "bert":
        p = f"encoder.layer.{i}."
        a = p + "attention."
        return dict(
            q=a + "self.query", k=a + "self.key", v=a + "self.value", o=a + "output.dense",
            scores=a + "scores", context=a + "context", up=p + "intermediate.dense",
            down=p + "output.dense",
        )  # fmt: skip
    p = f"model.layers.{i}."
    a = p + "self_attn."
    return dict(
        q=a + "q_proj", k=a + "k_proj", v=a + "v_proj", o=a + "o_proj",
        scores=a + "scores", context=a + "context", gate=p + "mlp.gate_proj",
        up=p + "mlp.up_proj", down=p + "mlp.down_proj",
    )  # fmt: skip


def build_network(c: HFConfig, phase: Phase | None = None) -> DecoderBuild:
    """The layers of ``c`` at ``phase`` (default: prefill of 128 tokens, batch 1).

    Raises :class:`ConfigError` naming the config file where the phase does not fit
    the model (longer than its positions, decode or an LM head on an encoder)."""
    phase = phase or Phase()
    problems = []
    if c.encoder and phase.kind == "decode":
        problems.append(f"model_type {c.family} is an encoder: expected phase prefill")
    if c.encoder and phase.lm_head:
        problems.append(f"model_type {c.family} has no LM head (lm_head asked for)")
    for key, n in (("seq_len", phase.seq_len), ("context", phase.context)):
        if (key == "seq_len") == (phase.kind == "prefill") and n > c.max_positions:
            problems.append(
                f"{key}={n} is more than the model's {c.max_positions} positions "
                "(max_position_embeddings / n_positions)"
            )
    if problems:
        raise ConfigError(c.source, problems)
    h, d, b = c.hidden, c.head_dim, phase.batch
    q_tokens = phase.seq_len if phase.kind == "prefill" else 1
    keys = phase.seq_len if phase.kind == "prefill" else phase.context
    if phase.kind == "decode" and c.sliding_window:
        keys = min(keys, c.sliding_window)
    tokens = b * q_tokens
    group = c.heads // c.kv_heads
    layers: list[Layer] = []
    blocks: list[DecoderBlock] = []

    cached = not c.encoder  # decoders keep K and V in a cache; an encoder does not

    def lin(name: str, n_in: int, n_out: int, kv_out: int = 0) -> Linear:
        return Linear(
            name=name,
            in_features=n_in,
            out_features=n_out,
            tokens=tokens,
            kv_out_features=kv_out * cached,
        )

    try:
        for i in range(c.layers):
            n = _names(c, i)
            if "qkv" in n:
                layers.append(lin(n["qkv"], h, 3 * h, kv_out=2 * h))  # q | k | v
            else:
                layers += [
                    lin(n["q"], h, c.heads * d),
                    lin(n["k"], h, c.kv_heads * d, kv_out=c.kv_heads * d),
                    lin(n["v"], h, c.kv_heads * d, kv_out=c.kv_heads * d),
                ]
            m = group * q_tokens
            kw = dict(heads=c.kv_heads, batch=b, kv_operand=cached)
            layers += [
                MatMul(name=n["scores"], m=m, k=d, n=keys, **kw),
                MatMul(name=n["context"], m=m, k=keys, n=d, **kw),
                lin(n["o"], c.heads * d, h),
            ]
            if c.gated:
                layers.append(lin(n["gate"], h, c.intermediate))
            layers += [
                lin(n["up"], h, c.intermediate),
                lin(n["down"], c.intermediate, h),
            ]
            blocks.append(
                DecoderBlock(
                    index=i,
                    heads=c.heads,
                    kv_heads=c.kv_heads,
                    head_dim=d,
                    intermediate=c.intermediate,
                    q=n.get("q"),
                    k=n.get("k"),
                    v=n.get("v"),
                    qkv=n.get("qkv"),
                    o=n["o"],
                    scores=n["scores"],
                    context=n["context"],
                    gate=n.get("gate") if c.gated else None,
                    up=n["up"],
                    down=n["down"],
                )
            )
        head = phase.lm_head if phase.lm_head is not None else not c.tied
        if head and not c.encoder:
            layers.append(lin("lm_head", h, c.vocab))
    except LayerError as e:
        raise ConfigError(c.source, str(e)) from None
    in_layers = sum(layer.weight_count for layer in layers)
    # GPT-2's projections are Conv1D modules: weight (in, out), the transpose of a Linear's
    conv1d = tuple(
        layer.name
        for layer in layers
        if c.family == "gpt2" and layer.name.startswith("transformer.h.") and layer.prunable
    )
    kv = f", {c.kv_heads} KV heads" if c.kv_heads != c.heads else ""
    return DecoderBuild(
        layers=tuple(layers),
        other_param_count=parameter_count(c) - in_layers,
        description=f"{c.family} {c.layers} layers, hidden {h}, {c.heads} heads{kv}; "
        + phase.describe(),
        stored_transposed=conv1d,
        blocks=tuple(blocks),
    )
