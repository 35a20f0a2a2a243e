"""The static checks of a reward program: an AST allow-list, the first and friendliest layer.

``static_check(source, field_names)`` returns EVERY problem found as ``(line, message)`` pairs.
It is not the security boundary (the program only ever runs in the locked-down sandbox child,
and only its traced graph of tensor ops runs in the trainer, see ``robreward.rewards.graph``),
but it rejects most mistakes and attacks with a message an LLM or a person can act on.

The checker works in two passes: first every import and every bound name of the whole module
(so a module alias used above its ``import torch as T`` line is judged like any other use),
then the visit. A name that an import binds may not be bound again anywhere (no parameter,
assignment or loop variable may shadow ``torch``), so every use of it means the module.
"""

from __future__ import annotations

import ast
import math

from robreward.rewards.sandbox import MODULES, SAFE_BUILTINS, parse

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
            elif isinstance(node, (ast.Import, ast.ImportFrom)):  # names imported as functions
                self.bound.update(a.asname or a.name.split(".")[0] for a in node.names
                                  if (a.asname or a.name.split(".")[0]) not in self.modules)
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
        self.collect_imports(tree)
        self.collect(tree)
        for name in sorted(set(self.modules) & self.bound):
            self.bad(tree, f"the name {name!r} is an imported module and may not be bound again "
                           "(as a parameter, variable or loop variable); pick another name")
        self.visit(tree)

    def collect_imports(self, tree):
        """Every module alias of the program, wherever its import stands (the first pass)."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES:
                        self.modules[alias.asname or alias.name.split(".")[0]] = (
                            alias.name if alias.asname else alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module in MODULES:
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in MODULES:
                        self.modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"

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
            elif full not in MODULES and full not in ALLOWED_ATTRS:
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
        if root is not None and root.id in self.modules:
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




def static_check(source: str, field_names, filename: str = "<reward>"):
    """Every problem as a sorted list of (line, message); empty when the program may run."""
    tree, err = parse(source, filename)
    if err:
        return [err]
    checker = _Checker(field_names)
    try:
        checker.check_module(tree)
    except (RecursionError, MemoryError) as err:  # a crafted program must not crash the checker
        return [(0, f"the program is nested too deeply or too large to check ({type(err).__name__}); "
                    "write flatter expressions")]
    return sorted(set(checker.problems))

