"""The reward sandbox: the only place an untrusted reward program (an LLM's or a user's
``compute_reward``) ever runs as Python.

``robreward.rewards.program`` starts this file by path (``python -I sandbox.py``), once per process:
a server that imports only the standard library and torch (never robreward, never the user's
environment: it gets a minimal one without API keys), warms up torch's tracer, and then forks one
child per program. The child

1. locks itself down: rlimits (address space, CPU time, no file writes, no core dumps), then a
   seccomp filter (x86_64 and aarch64) that refuses sockets, new processes, exec, opening any
   file, ptrace, memfd, io_uring, bpf and raising its own limits (``lock_down``);
2. runs the program's module with restricted builtins (``__import__`` returns only torch, math,
   typing, or a torch module torch's own C++ side already imported);
3. traces ``compute_reward`` at a symbolic number of worlds N into a graph of ATen tensor ops
   (``make_fx``, functionalized: no in-place ops; module state, Python loops and branches on
   plain Python values are unrolled into the trace, so the graph is a pure function of the state);
4. answers the graph as plain JSON (``graph_to_data``: op names, constants, shapes; never a
   pickle), or the reasons it could not.

The server SIGKILLs a child at the wall-clock timeout. The parent (``robreward.rewards.graph``)
checks every op of the answer against its allow-list and runs only that graph.
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
MODULES = {"torch", "torch.linalg", "torch.nn", "torch.nn.functional", "math", "typing"}
MAX_SOURCE_BYTES = 200_000
GRAPH_FORMAT = "robreward.reward-graph/1"
MAX_GRAPH_NODES = 5000
MAX_CONSTANT_ELEMENTS = 100_000  # all tensor constants of one program together
MAX_ANSWER_BYTES = 32 * 2**20  # a child's whole answer (a graph at the limits above is a few MB)
_MAX_FD = 1 << 16


def parse(source: str, filename: str = "<reward>"):
    """(tree with annotations stripped, None) or (None, (line, message)) for a syntax error."""
    if len(source.encode("utf-8", "replace")) > MAX_SOURCE_BYTES:
        return None, (0, f"the program is too large (over {MAX_SOURCE_BYTES // 1000} kB)")
    try:
        return _StripAnnotations().visit(ast.parse(source, filename)), None
    except SyntaxError as err:
        return None, (err.lineno or 0, f"syntax error: {err.msg} (a truncated or broken file?)")
    except (RecursionError, MemoryError) as err:
        return None, (0, f"the program could not be parsed: it is nested too deeply or too large "
                         f"({type(err).__name__}); write flatter expressions")
    except ValueError as err:
        return None, (0, f"the program could not be parsed: {type(err).__name__}: {err}")


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



def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
    """The program's ``__import__``: torch, math, typing (the static checks allow no more). torch's
    C++ side imports through the current frame's builtins too (``torch.tensor`` imports
    ``torch.storage``): a torch module that is already loaded is returned, nothing new is loaded."""
    if level:
        raise ImportError("relative imports are not allowed in a reward program")
    if name in MODULES or name == "__future__" or (name.startswith("torch.") and name in sys.modules):
        return __import__(name, globals, locals, fromlist, level)
    raise ImportError(f"import of {name!r} is not allowed in a reward program")


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

MEMORY_MARKERS = ("can't allocate memory", "cannot allocate memory", "not enough memory", "bad_alloc",
                  "out of memory")
DATA_DEPENDENT = ("data-dependent", "data dependent", "GuardOnDataDependent", "DataDependentOutput",
                  "_local_scalar_dense", "dynamic output shape", "DynamicOutputShape")
DATA_DEPENDENT_HELP = (
    "compute_reward depends on tensor values in Python (an `if`, `and`/`or`, `while`, bool(), float(), "
    ".item() on a tensor) or makes a tensor whose size depends on values (boolean-mask indexing such as "
    "x[mask], nonzero, masked_select); a reward is compiled to tensor ops and cannot do that: use "
    "torch.where(condition, a, b), multiply by mask.float(), or torch.clamp instead")


# -- the lock-down: rlimits, then seccomp ------------------------------------------------------------
# syscalls a reward child never needs: networking, new processes, exec, opening or changing files,
# other processes' memory, raising its own limits, kernel interfaces. errno EPERM; clone only for threads.
_DENY = {
    "x86_64": (0xC000003E, dict(
        clone=56, clone3=435, socket=41, connect=42, accept=43, sendto=44, recvfrom=45, sendmsg=46, recvmsg=47,
        shutdown=48, bind=49, listen=50, socketpair=53, setsockopt=54, accept4=288, fork=57, vfork=58,
        execve=59, execveat=322, kill=62, open=2, creat=85, openat=257, openat2=437, link=86, unlink=87,
        symlink=88, chmod=90, fchmod=91, chown=92, fchown=93, lchown=94, mkdir=83, rmdir=84, rename=82,
        truncate=76, ftruncate=77, mknod=133, mkdirat=258, mknodat=259, fchownat=260, unlinkat=263,
        renameat=264, linkat=265, symlinkat=266, fchmodat=268, renameat2=316, ptrace=101, setrlimit=160,
        prlimit64=302, chroot=161, mount=165, umount2=166, process_vm_readv=310, process_vm_writev=311,
        bpf=321, userfaultfd=323, memfd_create=319, perf_event_open=298, unshare=272, setns=308,
        io_uring_setup=425, io_uring_enter=426, io_uring_register=427, pidfd_open=434, pidfd_getfd=438,
        pidfd_send_signal=424, name_to_handle_at=303, open_by_handle_at=304, keyctl=250, add_key=248,
        request_key=249, init_module=175, finit_module=313, delete_module=176, reboot=169, personality=135,
        fanotify_init=300)),
    "aarch64": (0xC00000B7, dict(
        clone=220, clone3=435, socket=198, socketpair=199, bind=200, listen=201, accept=202, connect=203,
        sendto=206, recvfrom=207, setsockopt=208, shutdown=210, sendmsg=211, recvmsg=212, accept4=242,
        execve=221, execveat=281, kill=129, openat=56, openat2=437, mknodat=33, mkdirat=34, unlinkat=35,
        symlinkat=36, linkat=37, renameat=38, renameat2=276, truncate=45, ftruncate=46, fchmod=52,
        fchmodat=53, fchownat=54, fchown=55, ptrace=117, setrlimit=164, prlimit64=261, chroot=51, mount=40,
        umount2=39, process_vm_readv=270, process_vm_writev=271, bpf=280, userfaultfd=282, memfd_create=279,
        perf_event_open=241, unshare=97, setns=268, io_uring_setup=425, io_uring_enter=426,
        io_uring_register=427, pidfd_open=434, pidfd_getfd=438, pidfd_send_signal=424, name_to_handle_at=264,
        open_by_handle_at=265, keyctl=219, add_key=217, request_key=218, init_module=105, finit_module=273,
        delete_module=106, reboot=142, personality=92, fanotify_init=262)),
}


def seccomp_program(machine: str):
    """The BPF filter as (code, jt, jf, k) tuples, or None on an architecture without a table."""
    if machine not in _DENY:
        return None
    arch, nrs = _DENY[machine]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if machine == "x86_64":  # the x32 ABI's numbers alias the table above: refuse them all
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]
    # clone: threads only (CLONE_THREAD in its flags, the first argument); clone3: ENOSYS so libc
    # falls back to clone
    prog += [(jeq, 0, 4, nrs["clone"]), (ld, 0, 0, 16), (jset, 0, 1, 0x00010000), (ret, 0, 0, allow),
             (ret, 0, 0, eperm), (jeq, 0, 1, nrs["clone3"]), (ret, 0, 0, enosys)]
    for name, nr in nrs.items():
        if name not in ("clone", "clone3"):
            prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    return prog + [(ret, 0, 0, allow)]


def lock_down(memory_limit: int, cpu_s: int) -> bool:
    """Limits for this process, then the seccomp filter; True when the filter is in place."""
    import ctypes
    import platform
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    prog = seccomp_program(platform.machine())
    if prog is None:
        return False

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*ins) for ins in prog])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    fprog = Program(len(prog), filters)
    return libc.prctl(22, 2, ctypes.cast(ctypes.pointer(fprog), ctypes.c_void_p), 0, 0) == 0  # PR_SET_SECCOMP


# -- tracing --------------------------------------------------------------------------------------
def example_worlds(field_dims) -> int:
    """A number of worlds for the example inputs that equals no field's size: torch's tracer gives
    equal sizes one symbol, and N must stay a symbol of its own."""
    return next(n for n in (17, 19, 23, 29, 31, 37, 41, 43, 47) if n not in set(field_dims))


def trace_program(fn, names: list, examples: list, torch):
    """compute_reward(state, action) as a GraphModule of ATen ops at a symbolic number of worlds.
    ``names``/``examples``: the state fields and their example tensors; the last is the action."""
    from torch.fx.experimental.proxy_tensor import make_fx

    def reward(*tensors):
        state = DryRunState(zip(names[:-1], tensors[:-1]))
        return fn(state, tensors[-1])

    return make_fx(torch.func.functionalize(reward, remove="mutations"), tracing_mode="symbolic")(*examples)


def graph_to_data(gm, names: list, torch) -> dict:
    """A traced graph as plain JSON-able data: inputs, nodes (op name, args), tensor constants, and
    the output (total, terms). Raises ValueError for what the format cannot hold."""
    import operator

    ref: dict = {}
    nodes, constants, count = [], {}, 0

    def enc(a):
        if isinstance(a, torch.fx.Node):
            return {"ref": ref[a]}
        if a is None or isinstance(a, (bool, int, str)):
            return a
        if isinstance(a, float):
            return a if math.isfinite(a) else {"float": repr(a)}
        if isinstance(a, (list, tuple)):
            return [enc(x) for x in a]
        if isinstance(a, torch.dtype):
            return {"dtype": str(a).removeprefix("torch.")}
        if isinstance(a, torch.device):
            return {"device": "input"}
        if isinstance(a, torch.layout):
            return {"layout": str(a).removeprefix("torch.")}
        if isinstance(a, torch.memory_format):
            return {"memory_format": str(a).removeprefix("torch.")}
        raise ValueError(f"the reward graph holds a value of type {type(a).__name__}, which is not a tensor op argument")

    operators = {f: f"operator.{n}" for n, f in vars(operator).items() if callable(f) and not n.startswith("_")}
    inputs = iter(names)
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            ref[node] = f"in:{next(inputs)}"
        elif node.op == "get_attr":
            t = getattr(gm, node.target)
            count += t.numel()
            if count > MAX_CONSTANT_ELEMENTS or t.is_complex() or t.layout != torch.strided:
                raise ValueError(f"the program's tensor constants hold more than {MAX_CONSTANT_ELEMENTS} values "
                                 "or are not plain dense real tensors")
            name = f"c{len(constants)}"
            constants[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                               "values": [enc(v) for v in t.detach().cpu().flatten().tolist()]}
            ref[node] = f"const:{name}"
        elif node.op == "call_function":
            target = node.target
            if target is torch.ops.aten.copy_.default and node.args[0].op == "placeholder":
                raise ValueError(f"compute_reward modified the state in place (field(s) {ref[node.args[0]][3:]}); "
                                 "the state is read-only: compute new tensors instead")
            if isinstance(target, torch._ops.OpOverload):
                op = target.name().replace("::", ".")
                op = op if "." in op.split(".", 1)[1] else op + ".default"
            elif target in operators:
                op = operators[target]
            else:
                op = f"{getattr(target, '__module__', '?')}.{getattr(target, '__name__', repr(target))}"
            ref[node] = f"v{len(nodes)}"
            nodes.append({"op": op, "args": enc(list(node.args)), "kwargs": {k: enc(v) for k, v in node.kwargs.items()}})
            if len(nodes) > MAX_GRAPH_NODES:
                raise ValueError(f"the traced reward has more than {MAX_GRAPH_NODES} tensor ops (a Python loop over "
                                 "worlds or steps?); vectorize it over the first dimension")
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                got = (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                       else "a single tensor" if isinstance(out, torch.fx.Node) else type(out).__name__)
                raise ValueError(f"compute_reward must return a pair (total, terms), got {got}")
            total, terms = out
            if not isinstance(total, torch.fx.Node):
                raise ValueError(f"total must be a torch.Tensor of shape [N], got {type(total).__name__}")
            if not isinstance(terms, dict):
                raise ValueError(f"terms must be a dict of name -> tensor [N], got {type(terms).__name__}")
            if len(terms) > 64 or not all(isinstance(k, str) and len(k) <= 100 for k in terms):
                raise ValueError("terms must be a dict of at most 64 entries with str names (at most 100 characters)")
            bad = [k for k, v in terms.items() if not isinstance(v, torch.fx.Node)]
            if bad:
                raise ValueError(f"term {bad[0]!r} must be a tensor of shape [N], got {type(terms[bad[0]]).__name__}")
            output = {"total": enc(total), "terms": {k: enc(v) for k, v in terms.items()}}
    return {"format": GRAPH_FORMAT, "inputs": list(names), "nodes": nodes, "constants": constants, "output": output}


def _run_request(payload: dict, torch) -> dict:
    """In the forked child: lock down, load the program, trace it, describe the graph."""
    with open("/proc/self/status") as f:  # the limit is relative to what the server already mapped
        vm_kb = next((int(line.split()[1]) for line in f if line.startswith("VmSize:")), 0)
    names = list(payload["names"])
    n = example_worlds([d for shape in payload["shapes"] for d in shape])
    examples = [torch.zeros((n, *shape), dtype=getattr(torch, dtype))
                for shape, dtype in zip(payload["shapes"], payload["dtypes"])]
    filename, source = payload["filename"], payload["source"]
    locked = lock_down(vm_kb * 1024 + payload["memory_mb"] * 2**20, int(payload["timeout_s"]) + 2)
    if payload.get("require_seccomp") and not locked:
        return {"reasons": ["the sandbox could not install its seccomp filter on this machine (a Linux kernel "
                            "with seccomp on x86_64 or aarch64 is needed); the program was not run"]}
    try:
        fn = load_function(source, filename)
        gm = trace_program(fn, names, examples, torch)
        return {"graph": graph_to_data(gm, names, torch), "seccomp": locked}
    except MemoryError:
        return {"reasons": [f"exceeded memory limit ({payload['memory_mb']} MB)"]}
    except BaseException as err:  # noqa: BLE001 - everything the program does wrong is a reason
        text = f"{type(err).__name__}: {err}"
        if any(m in text for m in DATA_DEPENDENT):
            return {"reasons": [DATA_DEPENDENT_HELP + ":\n" + program_traceback(err, filename, source)]}
        if type(err).__name__ == "UnsupportedOperatorException":
            return {"reasons": [f"compute_reward uses the tensor op {str(err)[:80]}, which is not on the allow-list of "
                                "pure tensor ops and cannot be compiled:\n" + program_traceback(err, filename, source)]}
        if any(m in text.lower() for m in MEMORY_MARKERS):
            return {"reasons": [f"exceeded memory limit ({payload['memory_mb']} MB): {str(err).splitlines()[0][:200]}"]}
        if isinstance(err, ValueError) and not any(f.filename == filename for f in _frames(err)):
            return {"reasons": [str(err)]}  # graph_to_data's own message
        return {"reasons": ["compute_reward raised an exception:\n" + program_traceback(err, filename, source)]}


def _frames(err):
    import traceback

    return traceback.extract_tb(err.__traceback__)


def _fork_and_run(payload: dict, torch) -> dict:
    """Run one request in a forked child; kill it at the wall-clock timeout."""
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
            # only its own answer pipe stays open: not the request pipe, not the server's answer
            # channel (a forged line there would become another program's answer), not stderr (an
            # endless line there would fill the parent's memory)
            os.closerange(0, w)
            os.closerange(w + 1, _MAX_FD)
            data = json.dumps(_run_request(payload, torch)).encode()
            while data:
                data = data[os.write(w, data):]
        except BaseException:  # noqa: BLE001
            code = 3
        os._exit(code)
    os.close(w)
    buf, timed_out, oversized, deadline = b"", False, False, start + payload["timeout_s"]
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
            if len(buf) > MAX_ANSWER_BYTES:
                os.kill(pid, signal.SIGKILL)
                oversized = True
                break
    os.close(r)
    _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - start
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    if oversized:
        reason = f"the compiled reward is larger than {MAX_ANSWER_BYTES // 2**20} MB: write a smaller program"
    elif timed_out or sig == signal.SIGXCPU:
        reason = f"timed out after {payload['timeout_s']:g}s (an endless or far too slow computation?)"
    elif sig == signal.SIGKILL:
        reason = f"exceeded memory limit ({payload['memory_mb']} MB): the process was killed"
    else:
        try:
            return {**json.loads(buf), "seconds": seconds}
        except (ValueError, TypeError, RecursionError):
            reason = f"the sandbox process died ({f'signal {sig}' if sig else f'exit code {os.WEXITSTATUS(status)}'})"
    return {"reasons": [reason], "seconds": seconds}


WARM_UP = '''
import math
import torch
import torch.nn.functional as F

def compute_reward(state, action):
    x = torch.linalg.norm(state.a[:, :2], dim=-1) + torch.norm(state.a, dim=1) + state.a.sum(-1).abs()
    y = torch.where(x > 0.5, torch.exp(-x), torch.tanh(x)) * torch.clamp(x, min=0.0, max=1.0)
    c = torch.tensor([1.0, 2.0, 3.0]) * torch.ones(3, dtype=torch.float32)
    z = torch.zeros(state.num_envs) + (state.a * c).mean(-1) + F.relu(x) + torch.sigmoid(x) ** 2
    z = z + torch.cat([state.a, action], -1).max(-1).values + torch.stack([x, y], 0).min(0).values
    m = torch.zeros_like(x)
    m[x > 1.0] = 1.0
    terms = {"x": x * math.pi, "y": y.float(), "z": torch.nan_to_num(z) + m}
    return terms["x"] + terms["y"] + terms["z"], terms
'''


def _warm_up(torch) -> None:
    """Trace one program in the server, so the children find torch's tracer (sympy, decompositions)
    already imported: a child may not open files, so nothing may be imported lazily there."""
    fn = load_function(WARM_UP, "<warm-up>")
    gm = trace_program(fn, ["a", "action"], [torch.zeros(17, 3), torch.zeros(17, 2)], torch)
    graph_to_data(gm, ["a", "action"], torch)


def _serve() -> None:
    """The sandbox server, started once per process: imports torch once, warms up the tracer,
    then for each request (a length line + JSON from the trusted parent on stdin) forks a child
    and answers one JSON line on a private copy of stdout."""
    import json

    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, never into the answers
    import torch

    torch.set_num_threads(1)
    _warm_up(torch)
    out.write("ready\n")
    out.flush()
    stdin = sys.stdin.buffer
    while True:
        header = stdin.readline()
        if not header:
            return  # the parent went away
        payload = json.loads(stdin.read(int(header)))
        out.write(json.dumps(_fork_and_run(payload, torch)) + "\n")
        out.flush()


if __name__ == "__main__":
    _serve()
