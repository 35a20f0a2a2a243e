"""A reward program's compiled form: a graph of pure ATen tensor ops, the only form in which an
untrusted reward runs in the trainer.

The sandbox child (``robreward/rewards/sandbox.py``) traces ``compute_reward`` and answers the
graph as plain data (``GRAPH_FORMAT``)::

    {"format": ..., "inputs": [field, ..., "action"],
     "nodes": [{"op": "aten.add.Tensor", "args": [{"ref": "in:qpos"}, 1.0], "kwargs": {}}, ...],
     "constants": {"c0": {"dtype": "float32", "shape": [3], "values": [...]}},
     "output": {"total": {"ref": "v7"}, "terms": {"reach": {"ref": "v3"}, ...}}}

``RewardGraph(data)`` checks it here, in the parent, before anything runs: every op must be on
the allow-list of pure tensor ops (no in-place or ``out=`` variant, no randomness, no
uninitialized memory, nothing that reads or writes outside its arguments), every argument a
plain value (numbers, strings, dtypes, lists, references to earlier nodes), every constant a
small dense tensor. ``bind(device)`` then generates a straight-line Python function from the
checked data (one call per node to the op's C++ entry point, values freed after their last
use); no string from the answer ever becomes code (names are ours, literals go through
``repr`` of checked ints, floats and strings).

Before the first call at a number of worlds N, ``at(N)`` runs the graph on meta tensors (shapes
only, no memory, no time): the outputs must be float tensors of shape [N], and the graph may
allocate at most ``memory_mb`` and do at most ``MAX_FLOPS`` operations per call. So a program
that passed cannot hang, allocate without bound, keep state between calls, or touch a file.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import operator
from collections import Counter

import torch

from robreward.rewards.sandbox import (DATA_DEPENDENT, DATA_DEPENDENT_HELP, GRAPH_FORMAT, MAX_CONSTANT_ELEMENTS,
                                       MAX_GRAPH_NODES)

MAX_FLOPS = 1e10  # per call at the training N: about a second of CPU; a reward needs a millionth of that
_INT64_MAX = 2**63 - 1

# pure ATen ops (every overload that is neither in-place, nor out=, nor mutating its arguments)
_POINTWISE = """abs neg positive exp exp2 expm1 log log2 log10 log1p sqrt rsqrt sin cos tan asin acos atan sinh cosh
tanh asinh acosh atanh sigmoid sign sgn signbit floor ceil round trunc frac reciprocal erf erfc erfinv square relu
relu6 gelu silu elu selu celu leaky_relu hardtanh hardsigmoid hardswish softplus softshrink hardshrink mish logit
lgamma digamma nan_to_num isnan isinf isfinite isneginf isposinf isreal logical_not bitwise_not deg2rad rad2deg
sinc add sub rsub mul div true_divide floor_divide remainder fmod pow float_power atan2 arctan2 maximum minimum fmax
fmin hypot copysign logaddexp logaddexp2 xlogy lerp clamp clamp_min clamp_max clip where eq ne lt le gt ge
logical_and logical_or logical_xor bitwise_and bitwise_or bitwise_xor heaviside isclose addcmul addcdiv
masked_fill nextafter threshold log_sigmoid_forward _softmax _log_softmax softmax log_softmax"""
_REDUCE = """sum mean prod amax amin max min argmax argmin aminmax std var std_mean var_mean median nanmedian
nansum nanmean norm linalg_vector_norm linalg_matrix_norm linalg_norm frobenius_norm all any count_nonzero cumsum
cumprod cummax cummin logcumsumexp logsumexp kthvalue topk sort argsort msort dist"""
_LINALG = """mm bmm matmul dot vdot inner outer mv addmm addmv baddbmm einsum tensordot cross linalg_cross
linalg_vecdot cdist _cdist_forward _euclidean_dist cosine_similarity pairwise_distance _pairwise_distance_forward?
linalg_det _linalg_det det linalg_inv linalg_inv_ex inverse linalg_solve linalg_solve_ex _linalg_solve_ex
linalg_lu_factor_ex linalg_lu_solve diag diagonal diag_embed trace tril triu"""
_SHAPE = """view _unsafe_view reshape expand squeeze unsqueeze flatten unflatten permute transpose t select slice
narrow split split_with_sizes unbind chunk alias clone contiguous detach lift_fresh_copy _to_copy cat stack
hstack vstack column_stack flip roll repeat tile repeat_interleave broadcast_to gather index_select index
take_along_dim index_put scatter scatter_add scatter_reduce constant_pad_nd pad one_hot slice_scatter
select_scatter diagonal_scatter index_copy index_add movedim bucketize searchsorted copy fill view_as
expand_as"""
_CREATE = """full full_like zeros zeros_like ones ones_like arange linspace logspace scalar_tensor eye new_zeros
new_ones new_full sym_size sym_numel"""
ALLOWED_OPS = frozenset(n.rstrip("?") for n in " ".join([_POINTWISE, _REDUCE, _LINALG, _SHAPE, _CREATE]).split())
# arithmetic on sizes (a symbolic N): only these Python functions may appear
_PY_OPS = {f"operator.{n}": getattr(operator, n) for n in
           "add sub mul floordiv truediv mod neg pow eq ne lt le gt ge getitem".split()}
_PY_OPS.update({"torch.sym_float": torch.sym_float, "torch.sym_int": torch.sym_int,
                "torch.sym_max": torch.sym_max, "torch.sym_min": torch.sym_min})
_BILINEAR = {"mm", "bmm", "matmul", "addmm", "baddbmm", "einsum", "tensordot", "dot", "vdot", "inner", "outer",
             "mv", "addmv", "cdist", "_cdist_forward", "_euclidean_dist", "linalg_vecdot", "cross", "linalg_cross"}
_DTYPES = {n: getattr(torch, n) for n in "float32 float64 float16 bfloat16 int8 int16 int32 int64 uint8 bool".split()}
_LAYOUTS = {"strided": torch.strided}
_FORMATS = {n: getattr(torch, n) for n in "contiguous_format preserve_format channels_last".split()}


class GraphError(ValueError):
    """The sandbox's answer is not a graph this module will run; the message says why."""


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one call costs at N worlds (from a run on meta tensors)."""

    num_envs: int
    bytes: int
    """Every value the graph creates, summed (an upper bound on its peak memory)."""
    flops: float


def _resolve_op(name: str):
    """The callable for an op name of the answer, or GraphError if it is not allowed."""
    if name in _PY_OPS:
        return _PY_OPS[name], name.split(".")[1]
    parts = name.split(".")
    if len(parts) != 3 or parts[0] != "aten":
        raise GraphError(f"the reward uses {name[:80]!r}, which is not a tensor op on the allow-list")
    _, packet_name, overload = parts
    if packet_name not in ALLOWED_OPS:
        raise GraphError(f"the reward uses the tensor op {packet_name!r}, which is not on the allow-list of pure "
                         "tensor ops (random numbers, in-place writes, uninitialized memory and I/O are not allowed)")
    packet = getattr(torch.ops.aten, packet_name)
    if overload not in packet.overloads() or "out" in overload.split("_"):
        raise GraphError(f"the reward uses {name[:80]!r}, an unknown or out= variant of {packet_name!r}")
    op = getattr(packet, overload)
    if op._schema.is_mutable:
        raise GraphError(f"the reward uses {name[:80]!r}, which writes into its arguments")
    return op, packet_name


class RewardGraph:
    """A checked reward graph; ``bind(device)`` gives the function the trainer calls."""

    def __init__(self, data, *, memory_mb: int = 2048):
        if not isinstance(data, dict) or data.get("format") != GRAPH_FORMAT:
            raise GraphError(f"not a reward graph of format {GRAPH_FORMAT!r}")
        self.data = data
        self.memory_mb = int(memory_mb)
        inputs = data.get("inputs")
        if not isinstance(inputs, list) or not inputs or not all(isinstance(n, str) for n in inputs):
            raise GraphError("the graph's inputs must be a list of field names")
        self.inputs = list(inputs)
        nodes = data.get("nodes")
        if not isinstance(nodes, list) or len(nodes) > MAX_GRAPH_NODES:
            raise GraphError(f"the graph must have at most {MAX_GRAPH_NODES} nodes")
        self.constants = self._constants(data.get("constants", {}))
        self.ops, self.kinds = [], []
        known = {f"in:{n}" for n in self.inputs} | {f"const:{n}" for n in self.constants}
        self.nodes = []
        for i, node in enumerate(nodes):
            if not isinstance(node, dict) or not isinstance(node.get("op"), str):
                raise GraphError(f"node {i} is not an op")
            op, kind = _resolve_op(node["op"])
            args, kwargs = node.get("args", []), node.get("kwargs", {})
            if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(
                    isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k) for k in kwargs):
                raise GraphError(f"node {i} ({node['op']}) has malformed arguments")
            self._check_value(args, known, 0)
            self._check_value(list(kwargs.values()), known, 0)
            self.ops.append(op)
            self.kinds.append(kind)
            self.nodes.append((args, kwargs))
            known.add(f"v{i}")
        out = data.get("output")
        if not isinstance(out, dict) or not isinstance(out.get("terms"), dict):
            raise GraphError("the graph's output must be {'total': ..., 'terms': {...}}")
        self.term_names = list(out["terms"])
        if len(self.term_names) > 64 or not all(isinstance(k, str) and len(k) <= 100 for k in self.term_names):
            raise GraphError("terms must be a dict of at most 64 entries with str names")
        for value in [out.get("total"), *out["terms"].values()]:
            if not (isinstance(value, dict) and set(value) == {"ref"} and value["ref"] in known):
                raise GraphError("the total and every term must be a tensor the graph computes")
        self.output = out
        self._bound: dict = {}
        self._costs: dict[int, Cost] = {}

    # -- checking the answer --------------------------------------------------------------------
    @staticmethod
    def _constants(constants) -> dict:
        if not isinstance(constants, dict):
            raise GraphError("the graph's constants must be a mapping")
        out, total = {}, 0
        for name, c in constants.items():
            if not (isinstance(name, str) and name.isidentifier() and isinstance(c, dict)):
                raise GraphError("malformed tensor constant")
            dtype, shape, values = _DTYPES.get(c.get("dtype")), c.get("shape"), c.get("values")
            if dtype is None or not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d for d in shape):
                raise GraphError(f"tensor constant {name!r} has an unsupported dtype or shape")
            numel = math.prod(shape)
            total += numel
            if total > MAX_CONSTANT_ELEMENTS or not isinstance(values, list) or len(values) != numel:
                raise GraphError(f"tensor constants may hold at most {MAX_CONSTANT_ELEMENTS} values, as many as "
                                 "their shape says")
            values = [_scalar(v) for v in values]
            if not all(isinstance(v, (int, float, bool)) for v in values):
                raise GraphError(f"tensor constant {name!r} holds something other than numbers")
            out[name] = torch.tensor(values, dtype=torch.float64 if dtype.is_floating_point else None).reshape(
                shape).to(dtype)
        return out

    def _check_value(self, value, known: set, depth: int) -> None:
        if depth > 8:
            raise GraphError("an op argument is nested too deeply")
        if value is None or isinstance(value, (bool, int, str)):
            if isinstance(value, str) and len(value) > 200:
                raise GraphError("a string argument is too long")
            return
        if isinstance(value, float):
            return
        if isinstance(value, list):
            for v in value:
                self._check_value(v, known, depth + 1)
            return
        if isinstance(value, dict) and len(value) == 1:
            (key, v), = value.items()
            if key == "ref" and v in known:
                return
            if key == "float" and v in ("inf", "-inf", "nan"):
                return
            if (key == "dtype" and v in _DTYPES) or (key == "layout" and v in _LAYOUTS) or (
                    key == "memory_format" and v in _FORMATS) or (key == "device" and v == "input"):
                return
        raise GraphError(f"an op argument is not a plain value or an earlier result: {str(value)[:80]}")

    # -- code generation ------------------------------------------------------------------------
    def _literal(self, value, names: dict, env: dict) -> str:
        if isinstance(value, dict):
            (key, v), = value.items()
            if key == "ref":
                return names[v]
            if key == "float":
                return {"inf": "INF", "-inf": "(-INF)", "nan": "NAN"}[v]
            if key == "device":
                return "DEVICE"
            table = {"dtype": _DTYPES, "layout": _LAYOUTS, "memory_format": _FORMATS}[key]
            env[f"{key}_{v}"] = table[v]
            return f"{key}_{v}"
        if isinstance(value, list):
            return "[" + ", ".join(self._literal(v, names, env) for v in value) + "]"
        if isinstance(value, float) and not math.isfinite(value):  # a bare NaN/Infinity in the JSON
            return "NAN" if math.isnan(value) else "INF" if value > 0 else "(-INF)"
        return repr(value)  # None, bool, int, float, str: checked above

    def source(self, env: dict) -> str:
        """The straight-line function of this graph, its callables and constants put into env."""
        names = {f"in:{n}": f"a{i}" for i, n in enumerate(self.inputs)}
        names.update({f"const:{n}": f"C_{n}" for n in self.constants})
        alias: dict[str, str] = {}
        last_use: dict[str, int] = {}
        for i, (args, kwargs) in enumerate(self.nodes):
            for r in _refs([args, list(kwargs.values())]):
                last_use[r] = i
        used = self.used_inputs
        lines = [f"def forward({', '.join(names[f'in:{n}'] for n in used)}):"]
        for i, ((args, kwargs), op, kind) in enumerate(zip(self.nodes, self.ops, self.kinds)):
            ref = f"v{i}"
            if kind == "slice" and _noop_slice(args, kwargs):  # x[:, ...] slices all of dim 0: a view of x
                names[ref] = names[args[0]["ref"]]
                alias[ref] = args[0]["ref"]
                continue
            env[f"F{i}"] = _entry_point(op, kind)
            call = [self._literal(a, names, env) for a in args]
            call += [f"{k}={self._literal(v, names, env)}" for k, v in kwargs.items()]
            names[ref] = ref
            lines.append(f"    {ref} = F{i}({', '.join(call)})")
            dead = [names[r] for r, j in last_use.items() if j == i and r.startswith("v") and r not in alias
                    and r not in _refs(self.output)]
            if dead:
                lines.append(f"    del {', '.join(sorted(set(dead)))}")
        env["CLONE"] = torch.ops.aten.clone.default._op
        outs = {}  # an output that is (a view of) an input or a constant is copied: the trainer owns it
        for value in [self.output["total"], *self.output["terms"].values()]:
            ref = value["ref"]
            while ref in alias:
                ref = alias[ref]
            if ref not in outs:
                fresh = ref.startswith("v") and self.kinds[int(ref[1:])] not in _VIEWS
                outs[ref] = names[ref] if fresh else f"CLONE({names[ref]})"
        total = outs[_root(self.output["total"]["ref"], alias)]
        terms = ", ".join(f"{k!r}: {outs[_root(v['ref'], alias)]}" for k, v in self.output["terms"].items())
        lines.append(f"    return {total}, {{{terms}}}")
        return "\n".join(lines) + "\n"

    @property
    def used_inputs(self) -> list[str]:
        """The inputs the graph reads, in input order: what ``bind``'s function takes."""
        refs = _refs([[args, list(kwargs.values())] for args, kwargs in self.nodes]) | _refs(self.output)
        return [n for n in self.inputs if f"in:{n}" in refs]

    def bind(self, device) -> callable:
        """forward(*used_inputs) -> (total, terms) on `device`; built once per device."""
        device = torch.device(device)
        if device not in self._bound:
            env = {"__builtins__": {}, "INF": math.inf, "NAN": math.nan, "DEVICE": device}
            env.update({f"C_{n}": t.to(device) for n, t in self.constants.items()})
            code = compile(self.source(env), "<reward graph>", "exec")
            exec(code, env)  # noqa: S102 - our own straight-line code over checked ops and literals
            self._bound[device] = env["forward"]
        return self._bound[device]

    # -- shapes, memory and work at N -------------------------------------------------------------
    def at(self, shapes: dict, dtypes: dict, num_envs: int) -> Cost:
        """Run the graph on meta tensors of N worlds: GraphError unless the outputs are float [N] and
        the memory and work stay within the limits; the cost otherwise (cached per N)."""
        if num_envs in self._costs:
            return self._costs[num_envs]
        values = {f"in:{n}": torch.empty((num_envs, *shapes[n]), dtype=dtypes[n], device="meta") for n in self.inputs}
        values.update({f"const:{n}": t.to("meta") for n, t in self.constants.items()})
        nbytes, flops = 0, 0.0
        for i, ((args, kwargs), op, kind) in enumerate(zip(self.nodes, self.ops, self.kinds)):
            a, kw = _materialize(args, values), {k: _materialize(v, values) for k, v in kwargs.items()}
            try:
                out = op(*a, **kw)
            except Exception as err:  # noqa: BLE001 - an op that cannot run at N rejects the program
                if "nonzero" in str(err) or any(m in str(err) for m in DATA_DEPENDENT):
                    raise GraphError(DATA_DEPENDENT_HELP) from None
                raise GraphError(f"the reward's op {i} ({kind}) fails at N={num_envs} worlds: "
                                 f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}") from None
            values[f"v{i}"] = out
            outs = [t for t in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(t, torch.Tensor)]
            size = sum(t.numel() for t in outs)
            nbytes += sum(t.numel() * t.element_size() for t in outs)
            if kind in _BILINEAR:
                ins = [t.numel() for t in a if isinstance(t, torch.Tensor)][:2] + [size]
                flops += math.sqrt(math.prod(max(1, x) for x in ins))
            else:
                flops += max([size] + [t.numel() for t in a if isinstance(t, torch.Tensor)])
            if nbytes > self.memory_mb * 2**20:
                raise GraphError(f"exceeded memory limit ({self.memory_mb} MB): the reward allocates more than that "
                                 f"per call at N={num_envs} worlds "
                                 f"(op {i}, {kind}, makes {list(outs[0].shape) if outs else '?'})")
            if flops > MAX_FLOPS:
                raise GraphError(f"the reward does more than {MAX_FLOPS:.0e} operations per call at N={num_envs} "
                                 f"worlds (op {i}, {kind}); a reward should be a few tensor ops per world")
        for name, value in [("total", self.output["total"]), *self.output["terms"].items()]:
            t = values[value["ref"]]
            what = "total" if name == "total" else f"term {name!r}"
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != (num_envs,):
                got = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise GraphError(f"{what} must have shape [N]=[{num_envs}], got {got}")
            if not t.is_floating_point():
                raise GraphError(f"{what} must be a float tensor, got {t.dtype}")
        cost = Cost(num_envs, nbytes, flops)
        self._costs[num_envs] = cost
        return cost

    def op_counts(self) -> Counter:
        return Counter(self.kinds)


_VIEWS = {"view", "_unsafe_view", "reshape", "expand", "expand_as", "view_as", "squeeze", "unsqueeze", "flatten",
          "unflatten", "permute", "transpose", "t", "select", "slice", "narrow", "alias", "detach", "diagonal",
          "movedim", "split", "split_with_sizes", "unbind", "chunk", "broadcast_to", "contiguous"}


def _root(ref: str, alias: dict) -> str:
    while ref in alias:
        ref = alias[ref]
    return ref


_VF = torch._C._VariableFunctions
_LINALG_NS = torch._C._linalg


def _entry_point(op, kind: str):
    """The fastest callable with the op's meaning: torch's own Python binding of the op
    (``torch.add``'s, generated from the same schema, argument names included) where there is one,
    else the op's C++ entry point. Calling through ``torch.ops.aten.X.Y`` costs a Python frame and a
    slower argument path per op, about 20% of a small reward's time."""
    if not hasattr(op, "_op"):
        return op  # arithmetic on sizes
    for namespace in (_VF, _LINALG_NS):
        fn = getattr(namespace, kind, None)
        if fn is not None:
            return fn
    return op._op


def _scalar(v):
    if isinstance(v, dict) and set(v) == {"float"} and v["float"] in ("inf", "-inf", "nan"):
        return float(v["float"])
    return v


def _refs(value) -> set:
    if isinstance(value, dict):
        return {value["ref"]} if "ref" in value else set().union(*map(_refs, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_refs, value)) if value else set()
    return set()


def _noop_slice(args, kwargs) -> bool:
    """aten.slice(x, dim, 0, >= 2**62, 1): every element of that dimension (what `x[:, i]` traces to)."""
    if kwargs or not args or not isinstance(args[0], dict):
        return False
    full = list(args) + [0, None, None, 1][len(args) - 1:]
    start, end, step = full[2], full[3], full[4]
    return start in (0, None) and (end is None or (isinstance(end, int) and end >= 2**62)) and step in (1, None)


def _materialize(value, values: dict):
    if isinstance(value, dict):
        (key, v), = value.items()
        if key == "ref":
            return values[v]
        if key == "float":
            return float(v)
        if key == "device":
            return torch.device("meta")
        return {"dtype": _DTYPES, "layout": _LAYOUTS, "memory_format": _FORMATS}[key][v]
    if isinstance(value, list):
        return [_materialize(v, values) for v in value]
    return value


__all__ = ["ALLOWED_OPS", "Cost", "GraphError", "MAX_FLOPS", "RewardGraph"]
