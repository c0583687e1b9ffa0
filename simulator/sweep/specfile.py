"""Reading a sweep spec and checking it: every problem at once, each with its key path.

The schema (:data:`~simulator.sweep.spec.SWEEP_SCHEMA`) checks the spec's structure;
:class:`_Checker` the rest: each parameter's key path against the workload fields
and the base profiles' declared fields, its values against the field's type, the
rules of each block's mode, the networks and profiles named, the size of the sweep
and the figures asked for.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, PrunesimError, shown
from simulator.hwconfig import Field, builtin_platforms, load_platform
from simulator.studyparts import sha256_file, sha256_text
from simulator.sweep.columns import NUMERIC_OUTPUTS
from simulator.sweep.generators import MODES, Block, Domain, arange_values, geometric_values
from simulator.sweep.keys import (
    LEVELS_PATHS,
    PRUNED_VARIANTS,
    WORKLOAD_FIELDS,
    hardware_field,
    value_problem,
)
from simulator.sweep.spec import (
    MAX_POINTS,
    MAX_VALUES,
    SWEEP_SCHEMA,
    Plot,
    SweepSpec,
    canonical,
)
from simulator.workloads import builtin_models, load_network
from simulator.yamlio import key_path, read_yaml, schema_problems


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file; every problem is listed at once in one
    :class:`ConfigError` naming the file and each problem's key path."""
    path = Path(path)
    data = read_yaml(path)
    return spec_from_dict(data, str(path), path.resolve().parent)


def spec_from_dict(data: Any, source: str, folder: Path | None = None) -> SweepSpec:
    """Validate spec data (as read from YAML); ``folder`` is where relative network and
    profile files are looked for (default: the working folder)."""
    folder = folder or Path.cwd()
    if not isinstance(data, dict):
        raise ConfigError(source, "expected a mapping with sweep: and the workload keys")
    problems = schema_problems(data, SWEEP_SCHEMA)
    checker = _Checker(data, folder)
    problems += checker.problems
    if problems:
        raise ConfigError(source, problems)
    return checker.spec(source)


class _Checker:
    """Every check of a spec that its schema cannot make, each problem with its key
    path; skips what the schema already reports (wrong types and shapes)."""

    def __init__(self, data: dict, folder: Path):
        self.data, self.folder = data, folder
        self.problems: list[str] = []
        self.fixed: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.blocks: list[Block] = []
        self.pending: list[tuple] = []  # (block data, mode, [[path, domain, at]], key path)
        self.files: dict[str, str] = {}
        self.inputs: dict[str, str] = {}
        self.profiles: dict[str, dict] = {}
        self.checkpoint: Any = None
        self._fixed()
        self._checkpoint()
        self._sweep()
        self._inputs()
        self._hardware()
        for b, mode, params, where in self.pending:
            complete = all(d is not None for _, d, _ in params)
            self._block(b, mode, [(p, d) for p, d, _ in params if d is not None], where, complete)
        self._count()
        self.plots = self._plots()

    def _fixed(self) -> None:
        d = self.data
        for key in ("network", "platform"):
            if isinstance(d.get(key), str):
                self.fixed[key] = d[key]
        for section in ("pruning", "settings"):
            given = d.get(section) if isinstance(d.get(section), dict) else {}
            for key, f in WORKLOAD_FIELDS.items():
                head, _, name = key.partition(".")
                if head != section:
                    continue
                if name in given:
                    self.fixed[key] = given[name]
                elif f.default is not None and key not in LEVELS_PATHS:
                    if key in ("pruning.structure", "pruning.cascade") and (
                        "structured" not in self._variants()
                    ):
                        continue  # only the structured variant reads them
                    self.fixed[key] = f.default
        levels = [p for p in LEVELS_PATHS if p in self.fixed]
        if len(levels) > 1:
            self.problems.append(
                f"pruning: give one of rate, density or sparsity, got {', '.join(levels)}"
            )
        for key in self.fixed:
            self.kinds[key] = WORKLOAD_FIELDS[key].kind

    def _checkpoint(self) -> None:
        """The checkpoint's masks, mapped onto the (fixed) network; their variant must
        be run."""
        name = self.data.get("checkpoint")
        if not isinstance(name, str) or not isinstance(self.fixed.get("network"), str):
            if isinstance(name, str):
                self.problems.append("checkpoint: needs the network its masks belong to")
            return
        from simulator.checkpoints import read_checkpoint

        path = self.folder / name
        try:
            network = load_network(self._locate("network", self.fixed["network"]))
            self.checkpoint = read_checkpoint(path, network=network)
        except PrunesimError as e:
            self.problems.append(f"checkpoint: {e}")
            return
        variant = self.checkpoint.variant.variant
        if variant not in self._variants():
            self.problems.append(
                f"checkpoint: its masks are {variant} ({self.checkpoint.variant.note}); "
                f"list {variant} in variants"
            )
        self.files["checkpoint"] = str(path)
        self.inputs["checkpoint"] = sha256_file(path)[:16]

    def _sweep(self) -> None:
        raw = self.data.get("sweep")
        listed = isinstance(raw, list)
        blocks = raw if listed else [raw]
        seen: dict[str, str] = {}
        for i, b in enumerate(blocks):
            where = ("sweep", i) if listed else ("sweep",)
            if not isinstance(b, dict) or not isinstance(b.get("parameters"), dict):
                continue  # the schema says what is wrong
            mode = b.get("mode", "grid")
            params: list[list] = []  # [path, domain or None (a problem), key path]
            for pathname, spec in b["parameters"].items():
                at = key_path((*where, "parameters", pathname))
                if pathname in seen:
                    self.problems.append(f"{at}: also swept in {seen[pathname]}")
                    params.append([pathname, None, at])
                    continue
                seen[pathname] = key_path(where)
                f = self._field(pathname, at)
                domain = self._domain(spec, f, at, mode) if f is not None else None
                if domain is not None:
                    self.kinds[pathname] = f.kind
                params.append([pathname, domain, at])
            self.pending.append((b, mode, params, where))
        levels = [p for p in LEVELS_PATHS if p in seen]
        if len(levels) > 1:
            self.problems.append(
                f"sweep: sweep one of {', '.join(LEVELS_PATHS)}, got {', '.join(levels)}"
            )
        if levels:  # a swept level replaces the fixed one
            for p in LEVELS_PATHS:
                if p not in seen:
                    self.fixed.pop(p, None)
                    self.kinds.pop(p, None)
        if self.checkpoint is not None and "network" in seen:
            self.problems.append("sweep: a checkpoint's masks are one network's: give network once")
        if not any(p in self.fixed or p in seen for p in LEVELS_PATHS):
            if self.checkpoint is not None:  # the other variants at the checkpoint's level
                self.fixed["pruning.density"] = self.checkpoint.variant.density
                self.kinds["pruning.density"] = "number"
            else:
                self.fixed["pruning.rate"] = WORKLOAD_FIELDS["pruning.rate"].default
                self.kinds["pruning.rate"] = "number"
        for key in ("network", "platform"):
            if key not in self.fixed and key not in seen:
                self.problems.append(f"{key}: required (give it, or sweep it)")
        # parameter order: workload first (as declared), then hardware (as swept)
        order = [*WORKLOAD_FIELDS, *(p for p in seen if p not in WORKLOAD_FIELDS)]
        self.kinds = {p: self.kinds[p] for p in order if p in self.kinds}

    def _field(self, pathname: str, at: str) -> Field | None:
        if pathname in WORKLOAD_FIELDS:
            return WORKLOAD_FIELDS[pathname]
        if pathname.split(".", 1)[0] in ("pruning", "settings"):
            known = ", ".join(k for k in WORKLOAD_FIELDS if k.startswith(pathname.split(".")[0]))
            self.problems.append(f"{at}: unknown parameter (known: {known})")
            return None
        # a hardware field: checked against each base profile once they are known
        return Field(kind="hardware", description="")

    def _domain(self, spec: Any, f: Field, at: str, mode: str) -> Domain | None:
        forms = ("values", "range", "log_range", "uniform", "log_uniform")
        extras = {"range": ("step",), "log_range": ("num", "integer")}
        if isinstance(spec, list):
            spec = {"values": spec}
        elif not isinstance(spec, dict):
            spec = {"values": [spec]}
        given = [k for k in forms if k in spec]
        if len(given) != 1:
            self.problems.append(
                f"{at}: expected a value, a list, or one of {', '.join(forms)}, got "
                f"{', '.join(shown(k, 20) for k in spec) or 'an empty mapping'}"
            )
            return None
        form = given[0]
        unknown = sorted(set(spec) - {form, *extras.get(form, ())})
        if unknown:
            self.problems.append(
                f"{at}: unknown key(s) {', '.join(shown(k, 20) for k in unknown)} for {form}"
            )
            return None
        at = f"{at}.{form}" if form != "values" or "values" in spec else at
        if form == "values":
            return self._values(spec["values"], f, at)
        bounds = spec[form]
        if not (
            isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(x) for x in bounds)
        ):
            self.problems.append(f"{at}: expected [low, high], two numbers, got {shown(bounds)}")
            return None
        low, high = bounds
        kind = "number" if f.kind == "hardware" else f.kind
        if f.kind not in ("number", "integer", "hardware"):
            self.problems.append(f"{at}: {shown(f.kind)} values are listed, not generated")
            return None
        if low > high or (form != "range" and low == high and form != "log_range"):
            self.problems.append(f"{at}: expected low < high, got {shown(low)} and {shown(high)}")
            return None
        if form.startswith("log") and low <= 0:
            self.problems.append(f"{at}: expected bounds above 0 on a log scale, got {shown(low)}")
            return None
        if form in ("uniform", "log_uniform"):
            if mode not in ("random", "lhs"):
                self.problems.append(
                    f"{at}: continuous values need mode random or lhs (this block: {mode})"
                )
                return None
            if kind == "integer":
                self.problems.append(f"{at}: an integer parameter takes range or log_range")
                return None
            return Domain(kind=form, low=float(low), high=float(high))
        if form == "range":
            step = spec.get("step", 1)
            if not _is_number(step) or step <= 0:
                self.problems.append(f"{at}: step: expected a number above 0, got {shown(step)}")
                return None
            if (high - low) / step >= MAX_VALUES:
                self.problems.append(f"{at}: more than {MAX_VALUES:,} values")
                return None
            return self._values(list(arange_values(low, high, step)), f, at)
        num = spec.get("num")
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_VALUES:
            self.problems.append(
                f"{at}: num: expected an integer from 1 to {MAX_VALUES:,}, got {shown(num)}"
            )
            return None
        if num == 1 and low != high:
            self.problems.append(f"{at}: num 1 needs low = high")
            return None
        integer = spec.get("integer", isinstance(low, int) and isinstance(high, int))
        if not isinstance(integer, bool):
            self.problems.append(f"{at}: integer: expected true or false, got {shown(integer)}")
            return None
        values = geometric_values(low, high, num, integer)
        if len(set(values)) < len(values):
            self.problems.append(
                f"{at}: {num} values from {shown(low)} to {shown(high)} repeat once rounded "
                "to integers (fewer values, or integer: false)"
            )
            return None
        return self._values(list(values), f, at)

    def _values(self, values: Any, f: Field, at: str) -> Domain | None:
        if not isinstance(values, list) or not values:
            self.problems.append(f"{at}: expected a non-empty list of values, got {shown(values)}")
            return None
        if len(values) > MAX_VALUES:
            self.problems.append(f"{at}: more than {MAX_VALUES:,} values")
            return None
        if f.kind != "hardware":
            bad = [(i, value_problem(f, v)) for i, v in enumerate(values)]
            bad = [(i, why) for i, why in bad if why]
            for i, why in bad[:3]:
                self.problems.append(f"{at}[{i}]: {why}" if len(values) > 1 else f"{at}: {why}")
            if bad:
                return None
        return Domain(kind="values", values=tuple(values))

    def _block(self, b: dict, mode: str, params: list, where: tuple, complete: bool) -> None:
        at = key_path(where)
        samples, seed = b.get("samples"), b.get("seed", 0)
        if mode in ("random", "lhs") and samples is None:
            self.problems.append(f"{at}.samples: required for mode {mode}")
        if mode in ("grid", "zip") and ("samples" in b or "seed" in b):
            self.problems.append(f"{at}: samples and seed are for modes random and lhs")
        if mode == "zip":
            lengths = {p: len(d.values) for p, d in params if d.finite}
            longer = sorted({n for n in lengths.values() if n > 1})
            if len(longer) > 1:
                listed = ", ".join(f"{p} {n}" for p, n in lengths.items())
                self.problems.append(
                    f"{at}: zip needs lists of one length (or single values), got {listed}"
                )
                return
        if not complete or mode not in MODES:
            return  # a block with a problem makes no points
        if not isinstance(samples, int | None) or not isinstance(seed, int):
            return  # the schema says what is wrong
        self.blocks.append(
            Block(mode=mode, parameters=tuple(params), samples=samples or 0, seed=seed)
        )

    def _locate(self, kind: str, name: str) -> str:
        builtins = builtin_models() if kind == "network" else builtin_platforms()
        if name in builtins:
            return name
        path = self.folder / name
        return str(path) if path.exists() else name

    def _inputs(self) -> None:
        for kind in ("network", "platform"):
            names = {self.fixed[kind]} if kind in self.fixed else set()
            for _, _, params, _ in self.pending:
                for p, d, _ in params:
                    if p == kind and d is not None:
                        names |= set(d.values)
            for name in sorted(names):
                target = self._locate(kind, name)
                self.files[f"{kind} {name}"] = target
                try:
                    if kind == "network":
                        net = load_network(target)
                        digest = sha256_text(repr((net.layers, net.graph)))
                    else:
                        raw = dict(load_platform(target).raw)
                        self.profiles[name] = raw
                        digest = sha256_text(json.dumps(raw, sort_keys=True, default=repr))
                except ConfigError as e:
                    said = "; ".join(e.problems)
                    at = "" if e.source == shown(name) else f" ({e.source})"
                    self.problems.append(f"{kind} {shown(name)}{at}: {said}")
                    continue
                except PrunesimError as e:
                    self.problems.append(f"{kind} {shown(name)}: {e}")
                    continue
                self.inputs[f"{kind} {name}"] = digest[:16]

    def _hardware(self) -> None:
        """Each hardware key path against every base profile; its values' types."""
        for _, _, params, _ in self.pending:
            for entry in params:
                p, d, where = entry
                if d is None or self.kinds.get(p) != "hardware":
                    continue
                kind = None
                for name, raw in self.profiles.items():
                    f, why = hardware_field(p, raw)
                    if f is None:
                        self.problems.append(f"{where}: {why} (platform {shown(name)})")
                        kind = None
                        break
                    kind = f.kind
                    if d.finite:
                        bad = [(j, value_problem(f, v)) for j, v in enumerate(d.values)]
                        bad = [(j, w) for j, w in bad if w]
                        for j, w in bad[:3]:
                            self.problems.append(
                                f"{where}[{j}]: {w}" if len(d.values) > 1 else f"{where}: {w}"
                            )
                        if bad:
                            kind = None
                            break
                    elif f.kind != "number":
                        article = "an" if f.kind[0] in "aeiou" else "a"
                        self.problems.append(
                            f"{where}: {article} {f.kind} field takes listed values, range or "
                            "log_range"
                        )
                        kind = None
                        break
                if kind is None:
                    self.kinds.pop(p, None)
                    entry[1] = None
                else:
                    self.kinds[p] = kind

    def _count(self) -> None:
        n = 1
        for b in self.blocks:
            n *= b.count()
            if n > MAX_POINTS:
                self.problems.append(
                    f"sweep: more than {MAX_POINTS:,} points; split it into several sweeps"
                )
                return

    def _plots(self) -> tuple[Plot, ...]:
        raw = self.data.get("plots")
        if not isinstance(raw, dict):
            return ()
        variants = ("dense", *self._variants())
        numeric = {p for p, k in self.kinds.items() if k in ("number", "integer")}
        swept = {p for b in self.blocks for p, _ in b.parameters}
        out = []
        for kind in ("pareto", "breakeven"):
            spec = raw.get(kind)
            if not isinstance(spec, dict) or "x" not in spec or "y" not in spec:
                continue
            at = f"plots.{kind}"
            ok = True
            for axis in ("x", "y"):
                name = spec[axis]
                if kind == "pareto":
                    allowed = numeric | set(NUMERIC_OUTPUTS)
                    what = "an output or numeric parameter"
                else:
                    allowed = numeric & swept
                    what = "a swept numeric parameter"
                if name not in allowed:
                    self.problems.append(
                        f"{at}.{axis}: expected {what} ({', '.join(sorted(allowed)) or 'none'}), "
                        f"got {shown(name)}"
                    )
                    ok = False
            variant = spec.get("variant", "sparse" if "sparse" in variants else variants[-1])
            if variant not in variants or (kind == "breakeven" and variant == "dense"):
                self.problems.append(
                    f"{at}.variant: expected one of the variants run "
                    f"({', '.join(v for v in variants if kind == 'pareto' or v != 'dense')}), "
                    f"got {shown(variant)}"
                )
                ok = False
            if ok:
                out.append(
                    Plot(
                        kind=kind,
                        x=spec["x"],
                        y=spec["y"],
                        variant=variant,
                        metric=spec.get("metric", "speedup"),
                    )
                )
        return tuple(out)

    def _variants(self) -> tuple[str, ...]:
        given = self.data.get("variants", ["sparse"])
        if not isinstance(given, list):
            return ("sparse",)
        return tuple(v for v in PRUNED_VARIANTS if v in given)

    def spec(self, source: str) -> SweepSpec:
        return SweepSpec(
            source=source,
            name=str(self.data.get("name") or Path(source).stem),
            variants=self._variants(),
            fixed=tuple((p, canonical(self.kinds[p], v)) for p, v in self.fixed.items()),
            blocks=tuple(self.blocks),
            kinds=tuple(self.kinds.items()),
            inputs=tuple(sorted(self.inputs.items())),
            files=tuple(sorted(self.files.items())),
            plots=self.plots,
            checkpoint_variant=self.checkpoint.variant.variant if self.checkpoint else "",
        )


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)
