"""Checking and running untrusted reward code (an LLM's or a user's `compute_reward`).

Used by ``robreward.rewards.program``:

* ``static_check(source, field_names)``: an AST allow-list; returns EVERY problem found as
  ``(line, message)`` pairs. Nothing of the program runs before it passes.
* the dry-run server (``_serve``, this file run by path as ``python -I sandbox.py``, so it imports
  only the standard library and torch, never robreward): started once per process, it forks one
  child per program; the child sets RLIMIT_AS (memory), RLIMIT_FSIZE=0 (no file writes) and a
  CPU-time backstop, runs the program on the recorded states and answers plain JSON (never
  pickle, so nothing it returns can run code in the parent); the server SIGKILLs it at the
  wall-clock timeout.
* ``compile_program`` / ``load_function``: the code object and the restricted globals (a small
  builtins dict, an ``__import__`` that returns only torch/math/typing) it runs in, in the dry
  run and in training alike.
"""

from __future__ import annotations

import ast
import math
import os
import sys

SAFE_BUILTINS = (
    "abs all any bool dict divmod enumerate filter float int isinstance len list map max min pow range "
    "reversed round set slice sorted str sum tuple zip ValueError RuntimeError"
).split()
FORBIDDEN_NAMES = dict.fromkeys(["getattr", "setattr", "delattr", "hasattr"], "dynamic attribute access")
FORBIDDEN_NAMES.update(dict.fromkeys(["globals", "locals", "vars", "dir", "type", "object", "super", "id",
                                      "memoryview", "classmethod", "staticmethod", "property"], "introspection"))
FORBIDDEN_NAMES.update(dict.fromkeys(["exec", "eval", "compile"], "running generated code"))
FORBIDDEN_NAMES.update(dict.fromkeys(["open", "input", "print", "help", "breakpoint", "exit", "quit"], "I/O"))
_TORCH = (
    "abs absolute acos arccos acosh asin arcsin asinh atan arctan atan2 arctan2 atanh add sub subtract mul "
    "multiply div divide true_divide floor_divide remainder fmod neg negative pow square sqrt rsqrt exp exp2 "
    "expm1 log log2 log10 log1p logaddexp sigmoid tanh sin cos tan sinh cosh sinc relu sign sgn heaviside clamp "
    "clip clamp_min clamp_max maximum minimum fmax fmin max min amax amin aminmax argmax argmin sum mean nansum "
    "nanmean prod cumsum cumprod cummax cummin std var std_mean var_mean median norm dist cdist dot inner outer "
    "cross matmul mm bmm einsum tensordot where isfinite isnan isinf isclose allclose nan_to_num logical_and "
    "logical_or logical_not logical_xor gt ge lt le eq ne greater greater_equal less less_equal any all stack "
    "cat concat concatenate hstack vstack column_stack zeros zeros_like ones ones_like full full_like tensor "
    "as_tensor arange linspace eye diag diagonal diag_embed trace tril triu reshape flatten squeeze unsqueeze "
    "transpose permute t movedim narrow select gather index_select masked_select masked_fill repeat_interleave "
    "tile broadcast_to broadcast_tensors chunk split unbind flip roll sort argsort topk kthvalue softmax "
    "log_softmax logsumexp erf erfc floor ceil round trunc frac lerp hypot reciprocal deg2rad rad2deg "
    "cosine_similarity pairwise_distance count_nonzero numel is_tensor is_floating_point det inverse "
    "atleast_1d atleast_2d searchsorted bucketize xlogy float32 float64 float double float16 half bfloat16 "
    "int8 int16 int32 int64 long int bool uint8 pi e inf nan finfo iinfo Size Tensor no_grad device dtype"
).split()
_LINALG = "norm vector_norm matrix_norm cross vecdot det inv solve".split()
_FUNCTIONAL = (
    "relu relu6 elu selu celu gelu silu mish softplus softsign sigmoid hardtanh hardsigmoid tanh tanhshrink "
    "leaky_relu logsigmoid softmax log_softmax normalize cosine_similarity pairwise_distance mse_loss l1_loss "
    "smooth_l1_loss huber_loss one_hot pad"
).split()
_TYPING = "Any Dict List Mapping Optional Sequence Tuple Union".split()
ALLOWED_ATTRS = (
    {f"torch.{n}" for n in _TORCH} | {f"torch.linalg.{n}" for n in _LINALG}
    | {f"torch.nn.functional.{n}" for n in _FUNCTIONAL} | {f"typing.{n}" for n in _TYPING}
    | {f"math.{n}" for n in dir(math) if not n.startswith("_")}
)
MODULES = {"torch", "torch.linalg", "torch.nn", "torch.nn.functional", "math", "typing"}
# a few names that deserve their own reason (they are not on the allow-list anyway)
_WHY = {
    "save": "file I/O", "load": "file I/O", "from_file": "file I/O", "hub": "downloads code", "ops": "raw operators",
    "utils": "file and process utilities", "cuda": "device control", "manual_seed": "RNG seeding",
    "seed": "RNG seeding", "initial_seed": "RNG seeding", "set_rng_state": "RNG seeding", "random": "RNG state",
    "rand": "random numbers (a reward must be deterministic)", "randn": "random numbers (a reward must be deterministic)",
    "randint": "random numbers (a reward must be deterministic)", "normal": "random numbers (a reward must be deterministic)",
    "multinomial": "random numbers (a reward must be deterministic)", "bernoulli": "random numbers (a reward must be deterministic)",
    "compile": "compilation", "jit": "compilation", "classes": "raw operators", "library": "raw operators",
    "set_default_dtype": "global torch settings", "set_num_threads": "global torch settings",
}
DENIED_ATTRS = {
    "data": "bypasses the read-only check", "storage": "raw memory access", "untyped_storage": "raw memory access",
    "numpy": "raw memory access", "data_ptr": "raw memory access", "register_hook": "autograd hooks",
    "grad": "autograd internals", "grad_fn": "autograd internals", "backward": "autograd", "retain_grad": "autograd",
    "format": "string formatting can reach attributes", "format_map": "string formatting can reach attributes",
    "mro": "type introspection", "save": "file I/O", "load": "file I/O", "from_file": "file I/O",
    "tofile": "file I/O", "system": "processes", "popen": "processes", "pin_memory": "device memory",
}
_FRAME_PREFIXES = ("gi_", "f_", "co_", "tb_", "cr_", "ag_", "func_")
VIEW_METHODS = set(
    "view view_as reshape reshape_as squeeze unsqueeze flatten unflatten transpose permute t T mT H mH expand "
    "expand_as narrow select unbind split tensor_split chunk detach contiguous to type float double half cpu cuda "
    "as_strided unfold movedim moveaxis swapaxes swapdims diagonal real imag values items get broadcast_to "
    "atleast_1d atleast_2d".split()
)
_OK_STMTS = (ast.FunctionDef, ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.If, ast.Expr,
             ast.Pass, ast.Break, ast.Continue, ast.Assert, ast.Raise, ast.With, ast.Import, ast.ImportFrom)
_WHY_STMT = {
    "While": "while loops are not allowed (reward code is vectorized; use tensor ops or `for i in range(n)`)",
    "ClassDef": "class definitions are not allowed", "Global": "`global` is not allowed",
    "Nonlocal": "`nonlocal` is not allowed", "Try": "try/except is not allowed (errors must surface)",
    "TryStar": "try/except is not allowed (errors must surface)", "Delete": "`del` is not allowed",
    "AsyncFunctionDef": "async functions are not allowed", "AsyncFor": "async code is not allowed",
    "AsyncWith": "async code is not allowed", "Match": "match statements are not allowed",
    "Yield": "generators (`yield`) are not allowed", "YieldFrom": "generators (`yield`) are not allowed",
    "Await": "async code is not allowed",
}
MAX_SOURCE_BYTES = 200_000


def _dotted(node):
    """`a.b.c` -> (root Name node, ["b", "c"]), or (None, attrs) if not rooted at a Name."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node if isinstance(node, ast.Name) else None), attrs[::-1], node


class _Checker(ast.NodeVisitor):
    def __init__(self, field_names):
        self.fields = set(field_names)
        self.problems: list[tuple[int, str]] = []
        self.modules: dict[str, str] = {}  # alias -> dotted module
        self.bound: set[str] = set()
        self.tainted: set[str] = set()  # names that may alias a state/action tensor

    def bad(self, node, msg):
        self.problems.append((getattr(node, "lineno", 0), msg))

    # -- names bound anywhere, and which of them may alias state tensors (flow-insensitive) --
    def collect(self, tree):
        assigns = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.Lambda)):
                if isinstance(node, ast.FunctionDef):
                    self.bound.add(node.name)
                a = node.args
                for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                    self.bound.add(arg.arg)
                    self.tainted.add(arg.arg)  # any parameter may be handed a state tensor
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.bound.add(node.id)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                assigns += [(t, node.value) for t in targets]
            elif isinstance(node, (ast.For, ast.comprehension)):
                assigns.append((node.target, node.iter))
        changed = True
        while changed:
            changed = False
            for target, value in assigns:
                if self.aliases(value):
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name) and n.id not in self.tainted:
                            self.tainted.add(n.id)
                            changed = True

    def aliases(self, e) -> bool:
        """Could expression `e` evaluate to (a container of) a view of a state/action tensor?"""
        if isinstance(e, ast.Name):
            return e.id in self.tainted
        if isinstance(e, (ast.Attribute, ast.Subscript, ast.Starred)):
            return self.aliases(e.value)
        if isinstance(e, ast.NamedExpr):
            return self.aliases(e.value)
        if isinstance(e, ast.Call):
            f = e.func
            if isinstance(f, ast.Attribute) and f.attr in VIEW_METHODS:
                return self.aliases(f.value) or any(self.aliases(a) for a in e.args)
            return False
        if isinstance(e, (ast.Tuple, ast.List, ast.Set)):
            return any(self.aliases(x) for x in e.elts)
        if isinstance(e, ast.Dict):
            return any(self.aliases(x) for x in e.values if x is not None)
        if isinstance(e, ast.IfExp):
            return self.aliases(e.body) or self.aliases(e.orelse)
        if isinstance(e, ast.BoolOp):
            return any(self.aliases(x) for x in e.values)
        return False

    def root_tainted(self, target) -> bool:
        while isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
            target = target.value
        return isinstance(target, ast.Name) and (target.id in self.tainted or target.id in ("state", "action"))

    # -- top level -------------------------------------------------------------------------
    def check_module(self, tree):
        defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "compute_reward"]
        if not defs:
            self.bad(tree, "no top-level `def compute_reward(state, action):` found")
        elif len(defs) > 1:
            self.bad(defs[1], f"compute_reward is defined {len(defs)} times (lines "
                              f"{', '.join(str(d.lineno) for d in defs)}); define it exactly once")
        for d in defs[:1]:
            a = d.args
            names = [x.arg for x in a.posonlyargs + a.args]
            if names != ["state", "action"] or a.vararg or a.kwarg or a.kwonlyargs or a.defaults:
                self.bad(d, "compute_reward must have exactly the signature `compute_reward(state, action)`")
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.AnnAssign)):
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue
            if type(node).__name__ not in _WHY_STMT:
                self.bad(node, "top-level code other than imports, constants and function definitions is not allowed")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and any(
                    isinstance(n, ast.Name) and n.id == "compute_reward"
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) for n in ast.walk(t)):
                self.bad(node, "compute_reward may not be reassigned")
        self.collect(tree)
        self.visit(tree)

    # -- statements --------------------------------------------------------------------------
    def generic_visit(self, node):
        name = type(node).__name__
        if name in _WHY_STMT:
            self.bad(node, _WHY_STMT[name])
            return
        if isinstance(node, ast.stmt) and not isinstance(node, _OK_STMTS):
            self.bad(node, f"`{name}` statements are not allowed")
            return
        super().generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name not in MODULES:
                self.bad(node, f"import of {alias.name!r} is not allowed: only torch, math "
                               "(and torch.nn.functional, torch.linalg, typing) may be imported")
            elif alias.asname:
                self.modules[alias.asname] = alias.name
            else:
                self.modules[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node):
        mod = node.module or ""
        if node.level or (mod not in MODULES and mod != "__future__"):
            self.bad(node, f"import from {mod or '.'!r} is not allowed: only torch, math "
                           "(and torch.nn.functional, torch.linalg, typing) may be imported")
            return
        for alias in node.names:
            full = f"{mod}.{alias.name}"
            if mod == "__future__" and alias.name == "annotations":
                continue
            if alias.name == "*":
                self.bad(node, f"`from {mod} import *` is not allowed; import the names you use")
            elif full in MODULES:
                self.modules[alias.asname or alias.name] = full
            elif full not in ALLOWED_ATTRS:
                self.bad(node, f"`from {mod} import {alias.name}` is not allowed"
                               + (f" ({_WHY[alias.name]})" if alias.name in _WHY else ""))

    def visit_FunctionDef(self, node):
        if node.decorator_list:
            self.bad(node, f"decorators are not allowed (on {node.name}); remove e.g. @torch.jit.script")
        self.generic_visit(node)

    def visit_With(self, node):
        for item in node.items:
            root, attrs, _ = _dotted(item.context_expr.func) if isinstance(item.context_expr, ast.Call) else (None, [], None)
            if (root is None or self.modules.get(root.id) != "torch" or attrs != ["no_grad"]
                    or item.optional_vars is not None):
                self.bad(node, "`with` is only allowed as `with torch.no_grad():`")
        self.generic_visit(node)

    def visit_Assign(self, node):
        for t in node.targets:
            self.check_target(t, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        t = node.target
        if isinstance(t, ast.Name) and t.id in self.tainted:
            self.bad(node, f"in-place `{t.id} {_op(node.op)}= ...` may modify a state tensor that `{t.id}` "
                           f"refers to; write `{t.id} = {t.id} {_op(node.op)} ...` instead")
        self.check_target(t, node)
        self.generic_visit(node)

    def check_target(self, t, node):
        for n in ast.walk(t):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                self.bad(node, f"assigning to an attribute (`.{n.attr} = ...`) is not allowed; the state is read-only")
            elif (isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store) and self.root_tainted(n)
                  and not (isinstance(node, ast.Assign) and isinstance(n.slice, ast.Constant)
                           and isinstance(n.slice.value, str))):  # d["name"] = v: a dict, never a tensor
                self.bad(node, "assigning into a tensor that may be (a view of) a state field is not allowed; "
                               "the state is read-only: build a new tensor (torch.where, torch.cat, clone())")

    # -- expressions -------------------------------------------------------------------------
    def visit_Name(self, node):
        n = node.id
        if n.startswith("__"):
            self.bad(node, f"dunder name {n!r} is not allowed")
        elif n in FORBIDDEN_NAMES and n not in self.bound:
            self.bad(node, f"{n}() is not allowed ({FORBIDDEN_NAMES[n]})")
        elif isinstance(node.ctx, ast.Load):
            if n in self.modules:
                self.bad(node, f"the module {n!r} may only be used as `{n}.NAME` (not passed around or renamed)")
            elif n not in self.bound and n not in SAFE_BUILTINS:
                self.bad(node, f"name {n!r} is not defined or not allowed")

    def visit_Attribute(self, node):
        root, attrs, base = _dotted(node)
        if root is not None and root.id in self.modules and root.id not in self.bound - set(self.modules):
            full = ".".join([self.modules[root.id]] + attrs)
            if full in MODULES:
                self.bad(node, f"the module {full!r} may only be used as `{full}.NAME`")
            elif full not in ALLOWED_ATTRS:
                why = next((_WHY[a] for a in attrs if a in _WHY), None)
                self.bad(node, f"`{full}` is not allowed" + (f" ({why})" if why else
                               " (not on the allow-list of torch/math functions)"))
            for a in attrs:
                if a.startswith("_"):
                    self.bad(node, f"private or dunder attribute `.{a}` is not allowed")
            return  # the whole chain is judged; do not revisit its inner Attribute nodes
        for i, a in enumerate(attrs):
            if a.startswith("_"):
                self.bad(node, f"private or dunder attribute `.{a}` is not allowed")
            elif a.endswith("_"):
                self.bad(node, f"in-place method `.{a}()` is not allowed (use the out-of-place `.{a[:-1]}()`)")
            elif a in DENIED_ATTRS:
                self.bad(node, f"attribute `.{a}` is not allowed ({DENIED_ATTRS[a]})")
            elif a.startswith(_FRAME_PREFIXES):
                self.bad(node, f"attribute `.{a}` is not allowed (frame/code object access)")
            elif i == 0 and root is not None and root.id == "state" and a not in self.fields and a != "num_envs":
                self.bad(node, f"state has no field {a!r}; valid fields: {', '.join(sorted(self.fields))}")
        self.visit(base)

    def visit_Subscript(self, node):
        if (isinstance(node.value, ast.Name) and node.value.id == "state" and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str) and node.slice.value not in self.fields):
            self.bad(node, f"state has no field {node.slice.value!r}; valid fields: {', '.join(sorted(self.fields))}")
        self.generic_visit(node)

    def visit_Call(self, node):
        for kw in node.keywords:
            if kw.arg is None:
                self.bad(node, "`**kwargs` unpacking in calls is not allowed; pass keywords explicitly")
            elif kw.arg == "out":
                self.bad(node, "`out=` is not allowed (it writes into an existing tensor); use the return value")
            elif kw.arg == "inplace":
                self.bad(node, "`inplace=` is not allowed (it may write into a state tensor); drop it")
        self.generic_visit(node)


def _op(op) -> str:
    return {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
            ast.FloorDiv: "//", ast.Mod: "%"}.get(type(op), "op")


def parse(source: str, filename: str = "<reward>"):
    """(tree with annotations stripped, None) or (None, (line, message)) for a syntax error."""
    if len(source.encode("utf-8", "replace")) > MAX_SOURCE_BYTES:
        return None, (0, f"the program is too large (over {MAX_SOURCE_BYTES // 1000} kB)")
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as err:
        return None, (err.lineno or 0, f"syntax error: {err.msg} (a truncated or broken file?)")
    except (ValueError, RecursionError, MemoryError) as err:
        return None, (0, f"the program could not be parsed: {type(err).__name__}: {err}")
    return _StripAnnotations().visit(tree), None


class _StripAnnotations(ast.NodeTransformer):
    """Annotations are never evaluated: `x: T = v` -> `x = v`, `def f(a: T) -> R` -> `def f(a)`."""

    def visit_arg(self, node):
        node.annotation = None
        return node

    def visit_FunctionDef(self, node):
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node):
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=self.visit(node.value)), node)


def static_check(source: str, field_names, filename: str = "<reward>"):
    """Every problem as a sorted list of (line, message); empty when the program may run."""
    tree, err = parse(source, filename)
    if err:
        return [err]
    checker = _Checker(field_names)
    checker.check_module(tree)
    return sorted(set(checker.problems))


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or (name not in MODULES and name != "__future__"):
        raise ImportError(f"import of {name!r} is not allowed in a reward program")
    return __import__(name, globals, locals, fromlist, level)


def compile_program(source: str, filename: str):
    """(code object, fresh globals) for a program that passed static_check."""
    import builtins

    tree, err = parse(source, filename)
    if err:
        raise SyntaxError(err[1])
    code = compile(ast.fix_missing_locations(tree), filename, "exec", dont_inherit=True)
    safe = {n: getattr(builtins, n) for n in SAFE_BUILTINS}
    safe["__import__"] = _restricted_import
    return code, {"__builtins__": safe, "__name__": "reward_program"}


def load_function(source: str, filename: str):
    code, env = compile_program(source, filename)
    exec(code, env)  # noqa: S102 - the program passed static_check; builtins are restricted
    return env["compute_reward"]


class DryRunState(dict):
    """The TaskState interface (fields as attributes and keys, num_envs) for the dry-run child,
    which imports only torch, never robreward."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"TaskState has no field {name!r}; fields are: {', '.join(sorted(self))}") from None

    num_envs = property(lambda self: next(iter(self.values())).shape[0])


MEMORY_MARKERS = ("can't allocate memory", "cannot allocate memory", "not enough memory", "bad_alloc",
                  "out of memory")


def describe_output(ret, n: int, torch) -> dict:
    """compute_reward's return value as plain JSON-able data (values only for small tensors)."""
    def tensor(v):
        if not isinstance(v, torch.Tensor):
            return {"kind": type(v).__name__}
        d = {"kind": "tensor", "dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
        if v.numel() <= 4 * n and not v.is_complex():
            d["values"] = v.detach().cpu().double().flatten().tolist()
        return d

    if not isinstance(ret, (tuple, list)) or len(ret) != 2:
        got = f"a {type(ret).__name__} of length {len(ret)}" if isinstance(ret, (tuple, list)) else type(ret).__name__
        return {"error": f"compute_reward must return a pair (total, terms), got {got}"}
    total, terms = ret
    if not isinstance(terms, dict):
        return {"total": tensor(total), "terms_kind": type(terms).__name__}
    if len(terms) > 64 or not all(isinstance(k, str) for k in terms):
        return {"error": "terms must be a dict of at most 64 entries with str names"}
    return {"total": tensor(total), "terms": {k: tensor(v) for k, v in terms.items()}}


def program_traceback(err, filename: str, source: str) -> str:
    """The last lines of a traceback, only the frames inside the program, with their source."""
    import traceback

    lines = source.splitlines()
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == filename][-3:]
    out = [f"  line {f.lineno}, in {f.name}: {lines[f.lineno - 1].strip() if 0 < f.lineno <= len(lines) else ''}"
           for f in frames]
    msg = str(err).strip().splitlines()
    out.append(f"  {type(err).__name__}: {msg[-1] if msg else ''}"[:500])
    return "\n".join(out)


def _run_program(payload: dict, torch) -> dict:
    """In the forked child: set the limits, run the program on every recorded state."""
    import resource

    with open("/proc/self/status") as f:  # the limit is relative to what the server already mapped
        vm_kb = next((int(line.split()[1]) for line in f if line.startswith("VmSize:")), 0)
    steps = [{k: torch.from_numpy(v) for k, v in s.items()} for s in payload["states"]]
    limit = vm_kb * 1024 + payload["memory_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = int(payload["timeout_s"]) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    result = {"reasons": [], "outputs": []}
    filename, source = payload["filename"], payload["source"]
    try:
        fn = load_function(source, filename)
        for fields in steps:
            before = {k: v._version for k, v in fields.items()}
            ret = fn(DryRunState(fields), fields["action"])
            changed = sorted(k for k, v in fields.items() if v._version != before[k])
            if changed:
                result["reasons"].append(
                    f"compute_reward modified the state in place (field(s) {', '.join(changed)}); "
                    "the state is read-only: compute new tensors instead")
                break
            result["outputs"].append(describe_output(ret, fields["action"].shape[0], torch))
    except MemoryError:
        result["reasons"].append(f"exceeded memory limit ({payload['memory_mb']} MB)")
    except BaseException as err:  # noqa: BLE001 - everything the program does wrong is a reason
        if any(m in str(err).lower() for m in MEMORY_MARKERS):
            result["reasons"].append(f"exceeded memory limit ({payload['memory_mb']} MB): {str(err).splitlines()[0][:200]}")
        else:
            result["reasons"].append("compute_reward raised an exception:\n" + program_traceback(err, filename, source))
    return result


def _fork_and_run(payload: dict, torch) -> dict:
    """Run one program in a forked child; kill it at the wall-clock timeout."""
    import json
    import select
    import signal
    import time

    r, w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(r)
            os.close(0)  # the request pipe: nothing for the program to read
            data = json.dumps(_run_program(payload, torch)).encode()
            while data:
                data = data[os.write(w, data):]
        except BaseException:  # noqa: BLE001
            code = 3
        os._exit(code)
    os.close(w)
    buf, timed_out, deadline = b"", False, start + payload["timeout_s"]
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        if select.select([r], [], [], left)[0]:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            buf += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - start
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    if timed_out or sig == signal.SIGXCPU:
        reason = f"timed out after {payload['timeout_s']:g}s (an endless or far too slow computation?)"
    elif sig == signal.SIGKILL:
        reason = f"exceeded memory limit ({payload['memory_mb']} MB): the process was killed"
    else:
        try:
            return {**json.loads(buf), "seconds": seconds}
        except ValueError:
            reason = f"the dry run process died ({f'signal {sig}' if sig else f'exit code {os.WEXITSTATUS(status)}'})"
    return {"reasons": [reason], "outputs": [], "seconds": seconds}


def _serve() -> None:
    """The sandbox server, started once per training/checking process: imports torch once, then
    for each request (a length line + pickle from the trusted parent on stdin) forks a child that
    runs the program under the limits, and answers one JSON line on a private copy of stdout."""
    import json
    import pickle

    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, never into the answers
    import torch

    torch.set_num_threads(1)
    out.write("ready\n")
    out.flush()
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline()
        if not header:
            return  # the parent went away
        payload = pickle.loads(stdin.read(int(header)))
        out.write(json.dumps(_fork_and_run(payload, torch)) + "\n")
        out.flush()


if __name__ == "__main__":
    _serve()
