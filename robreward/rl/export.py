"""The policy file: policy.onnx (raw observations float32 [B, obs_dim] in, normalization
baked in, deterministic actions clipped to the action space [B, act_dim] out), its
MODEL_CARD.md, and `load_policy(path)` for a policy file or a run directory."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robreward.fileio import atomic_path
from robreward.rundir import CARD_FILE, POLICY_FILE  # noqa: F401  (re-exported: the file names of the contract)
from robreward.rundir import CHECKPOINT_DIR, CONFIG_FILE, LATEST, RunDir, read_config

ONNX_OPSET = 17  # supported by onnxruntime >= 1.14


class DeterministicPolicy(nn.Module):
    """Raw obs [B, obs_dim] -> clamp(actor(normalize(obs)), low, high) [B, act_dim]."""

    def __init__(self, normalizer: nn.Module, actor: nn.Module, action_low, action_high):
        super().__init__()
        self.normalizer, self.actor = normalizer, actor
        self.register_buffer("action_low", torch.as_tensor(action_low, dtype=torch.float32).reshape(-1))
        self.register_buffer("action_high", torch.as_tensor(action_high, dtype=torch.float32).reshape(-1))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.max(torch.min(self.actor(self.normalizer(obs)), self.action_high), self.action_low)


class TorchPolicy:
    """In-process policy callable: obs tensor [B, obs_dim] -> deterministic clipped actions [B, act_dim]."""

    task: str | None = None  # the task it was trained on, when known (for messages)
    path: str = ""

    def __init__(self, module: DeterministicPolicy):
        self.module = module.eval()
        self.device = next(iter(module.buffers())).device
        self.act_dim = int(module.action_low.numel())
        first = next((m for m in module.modules() if isinstance(m, nn.Linear)), None)
        self.obs_dim = int(first.in_features) if first is not None else None

    @torch.no_grad()
    def __call__(self, obs):
        if isinstance(obs, np.ndarray):
            return self.module(torch.as_tensor(obs, dtype=torch.float32, device=self.device)).cpu().numpy()
        return self.module(obs.to(self.device, torch.float32)).to(obs.device)


class OnnxPolicy:
    """policy.onnx through onnxruntime (CPU): obs [B, obs_dim] (torch or numpy) -> actions of the same kind.

    The file is checked before onnxruntime sees it (:func:`check_onnx_policy`); onnxruntime then
    runs the checked bytes, never the path (no external data is read). `task`: the name of the
    task it was trained on when known (a label from the run's config.yaml, for messages)."""

    def __init__(self, path: str | os.PathLike, task: str | None = None):
        import onnxruntime as ort

        self.path, self.task = str(path), task
        model = _read_onnx(self.path)
        self.input_name, self.obs_dim, self.act_dim = check_onnx_policy(model, self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ValueError(f"could not load policy file {self.path!r}: {err}") from None

    def _run(self, array: np.ndarray) -> np.ndarray:
        if array.ndim != 2 or array.shape[1] != self.obs_dim:
            raise ValueError(f"policy {self.path!r} takes observations [B, {self.obs_dim}], got {list(array.shape)}")
        try:
            return self.session.run(None, {self.input_name: array})[0]
        except Exception as err:  # onnxruntime's own errors are long C++ traces
            raise ValueError(f"policy {self.path!r} failed on observations {list(array.shape)}: "
                             f"{str(err).splitlines()[0][:300]}") from None

    def __call__(self, obs):
        if isinstance(obs, torch.Tensor):
            out = self._run(obs.detach().to("cpu", torch.float32).numpy())
            return torch.from_numpy(out).to(obs.device)
        return self._run(np.asarray(obs, dtype=np.float32))

    def __repr__(self) -> str:
        return f"OnnxPolicy({self.path!r}, obs_dim={self.obs_dim}, act_dim={self.act_dim})"


# What export_onnx emits: robreward's PPO policy (elu, tanh or relu MLP; with or without the
# observation normalizer) and the SB3 path (VecNormalize + tanh MLP). Collected from the shipped
# policies/*/policy.onnx and fresh exports of each kind; tests/rl/test_export.py pins the list.
ALLOWED_OPS = frozenset({"Clip", "Constant", "Div", "Elu", "Gemm", "Max", "Min", "Relu", "Sub", "Tanh"})
MAX_POLICY_BYTES = 512 * 2**20
MAX_ROW_ELEMENTS = 2**16  # per batch row of any tensor: far above an MLP's widths
MAX_CONSTANT_ELEMENTS = 2**24  # a tensor without the batch axis (weights, constants)


def _read_onnx(path: str):
    import onnx

    size = os.path.getsize(path)
    if size > MAX_POLICY_BYTES:
        raise ValueError(f"policy file {path!r} is {size / 2**20:.0f} MiB; a policy is at most "
                         f"{MAX_POLICY_BYTES // 2**20} MiB: refusing to load it")
    try:
        return onnx.load(path, load_external_data=False)  # never follow external-data paths
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and others: not a model
        raise ValueError(f"could not load policy file {path!r}: not an ONNX model ({err})") from None


def _dims(value_info) -> list:
    """[(int or None, param str)] per dim, or None when the type or shape is unknown."""
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type" or not value_info.type.tensor_type.HasField("shape"):
        return None
    shape = value_info.type.tensor_type.shape
    return [(d.dim_value if d.HasField("dim_value") else None, d.dim_param) for d in shape.dim]


def check_onnx_policy(model, path: str = "policy.onnx") -> tuple[str, int, int]:
    """Refuse an ONNX model that is not what export_onnx writes; return (input name, obs_dim, act_dim).

    Checked: only the ops of ALLOWED_OPS from the default domain, no functions, subgraphs or
    external data, one float32 input [batch, obs_dim] and one float32 output [batch, act_dim],
    and every intermediate tensor of a known, bounded shape with the batch axis first (so no
    op can allocate more than a fixed amount per observation row)."""
    import onnx
    from onnx import TensorProto, shape_inference

    where = f"policy file {path!r}"
    refuse = "; robreward runs only the MLP policies its `export` writes (robreward train / export_onnx)"
    bad_domains = [o.domain for o in model.opset_import if o.domain not in ("", "ai.onnx")]
    if bad_domains or len(model.functions):
        raise ValueError(f"{where} uses operator domains {bad_domains or [f.domain for f in model.functions]}{refuse}")
    graph = model.graph
    ops = sorted({f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
                  for n in graph.node if n.domain not in ("", "ai.onnx") or n.op_type not in ALLOWED_OPS})
    if ops:
        raise ValueError(f"{where} uses ops {', '.join(ops)}, outside what robreward exports "
                         f"({', '.join(sorted(ALLOWED_OPS))}){refuse}")
    tensors = list(graph.initializer) + [a.t for n in graph.node for a in n.attribute
                                         if a.type == onnx.AttributeProto.TENSOR]
    external = [t.name for t in tensors if t.data_location == TensorProto.EXTERNAL or len(t.external_data)]
    if external or len(graph.sparse_initializer):
        raise ValueError(f"{where} keeps weights outside the file ({', '.join(external) or 'sparse initializers'}): "
                         f"refusing to read other files{refuse}")
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node for a in n.attribute):
        raise ValueError(f"{where} has subgraphs{refuse}")
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"{where} has {len(inputs)} inputs and {len(graph.output)} outputs; a policy has one "
                         "input (observations [batch, obs_dim]) and one output (actions [batch, act_dim])")
    obs_dim = _io_dim(inputs[0], where, "input (observations)")
    act_dim = _io_dim(graph.output[0], where, "output (actions)")
    try:
        inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        onnx.checker.check_model(inferred)
    except Exception as err:  # noqa: BLE001 - onnx raises several kinds for an inconsistent graph
        raise ValueError(f"{where} is not a consistent ONNX graph: {str(err).splitlines()[0][:300]}") from None
    batch = _dims(inputs[0])[0][1]
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for node in graph.node:
        for name in node.output:
            _check_bounded(known.get(name), name, batch, where, node.op_type)
    return inputs[0].name, obs_dim, act_dim


def _io_dim(value_info, where: str, what: str) -> int:
    from onnx import TensorProto

    dims = _dims(value_info)
    elem = value_info.type.tensor_type.elem_type if value_info.type.WhichOneof("value") == "tensor_type" else None
    shape = "unknown" if dims is None else "[" + ", ".join(p or str(v) for v, p in dims) + "]"
    ok = (elem == TensorProto.FLOAT and dims is not None and len(dims) == 2 and dims[0][0] is None
          and bool(dims[0][1]) and dims[1][0] is not None and 1 <= dims[1][0] <= MAX_ROW_ELEMENTS)
    if not ok:
        raise ValueError(f"{where}: its {what} is {shape} "
                         f"({'float32' if elem == TensorProto.FLOAT else f'ONNX type {elem}'}); a policy takes "
                         "float32 [batch, obs_dim] and gives float32 [batch, act_dim] with a dynamic batch axis "
                         "(export it with robreward.rl.export_onnx)")
    return int(dims[1][0])


def _check_bounded(value_info, name: str, batch: str, where: str, op: str) -> None:
    dims = None if value_info is None else _dims(value_info)
    if dims is None or len(dims) > 2 or any(v is None and p != batch for v, p in dims):
        shape = "unknown" if dims is None else "[" + ", ".join(p or str(v) for v, p in dims) + "]"
        raise ValueError(f"{where}: the {op} output {name!r} has shape {shape}; every tensor of a policy has a "
                         "known shape of rank <= 2 with only the batch axis dynamic")
    symbolic = [i for i, (v, _) in enumerate(dims) if v is None]
    if symbolic not in ([], [0]):
        shape = "[" + ", ".join(p or str(v) for v, p in dims) + "]"
        raise ValueError(f"{where}: the {op} output {name!r} has shape {shape}; in a policy only the first axis "
                         "is the batch: refusing to run it")
    elements = math.prod(v for v, _ in dims if v is not None)
    limit = MAX_ROW_ELEMENTS if symbolic else MAX_CONSTANT_ELEMENTS
    if elements > limit:
        raise ValueError(f"{where}: the {op} output {name!r} would hold {elements:,} numbers"
                         f"{' per observation' if symbolic else ''} (a policy's tensors hold at most {limit:,}): "
                         "refusing to run it")


def check_policy_task(policy, spec, where: str | None = None) -> None:
    """Refuse a policy whose observation/action sizes differ from task `spec`'s, saying which
    sizes and (when known) which task the policy was trained on."""
    obs_dim, act_dim = getattr(policy, "obs_dim", None), getattr(policy, "act_dim", None)
    if not isinstance(obs_dim, int) or not isinstance(act_dim, int):
        return
    if (obs_dim, act_dim) == (int(spec.obs_dim), int(spec.act_dim)):
        return
    trained = getattr(policy, "task", None)
    where = where or f"policy {getattr(policy, 'path', '')!r}".replace(" ''", "")
    sizes = f"observations [B, {obs_dim}] -> actions [B, {act_dim}]"
    wanted = f"observations [B, {spec.obs_dim}] -> actions [B, {spec.act_dim}]"
    hint = (f"it was trained on task {trained!r}: evaluate or record it with that task" if trained
            else "use it with the task it was trained on (--task)")
    raise ValueError(f"{where} does not fit task {spec.name!r}: the policy maps {sizes}, task {spec.name!r} "
                     f"needs {wanted}; {hint}")


def export_onnx(module: nn.Module, obs_dim: int, path: str | os.PathLike) -> Path:
    """Export a raw-obs -> action module to ONNX with a dynamic batch axis (written atomically)."""
    path = Path(path)
    module = module.to("cpu").eval()
    with warnings.catch_warnings(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module, (torch.zeros(1, obs_dim),), str(tmp), input_names=["obs"], output_names=["action"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, opset_version=ONNX_OPSET, dynamo=False,
        )
    return path


def _trained_task(folder: Path) -> str | None:
    """The task name in a run's config.yaml, as a label for messages only (never loaded)."""
    try:
        task = read_config(folder, migrate=False).get("task") if (folder / CONFIG_FILE).is_file() else None
    except Exception:  # noqa: BLE001 - a label: an unreadable config only loses it
        return None
    return task[:200] if isinstance(task, str) else None


def load_policy(path: str | os.PathLike, task=None):
    """A callable obs [B, obs_dim] -> deterministic clipped actions [B, act_dim] from a policy.onnx file
    or a run directory: a training run's policy.onnx (one without it falls back to
    checkpoints/latest.pt), a ``prefs train`` run's final policy (ppo/), a ``generate`` run's
    best policy (best/policy.onnx; robreward.rundir.find_policy_run). A seed group is several
    policies: pass one seed_N/ (``robreward eval`` evaluates them all).

    task: a TaskSpec (or suite task name) to check the policy's observation and action sizes
    against before it runs (ValueError naming both sizes and the task it was trained on)."""
    from robreward.rundir import GENERATE_BEST_DIR, PolicyRun, find_policy_run

    path = Path(path)
    if path.is_file() and path.suffix != ".onnx":
        raise ValueError(f"policy file {str(path)!r} is not an .onnx file: pass policy.onnx or a run directory")
    if not path.exists():
        raise FileNotFoundError(f"no policy at {str(path)!r}: pass a policy.onnx file or a run directory")
    try:
        found = find_policy_run(path)
    except FileNotFoundError:
        if not path.is_dir() or (path / "config.json").is_file():
            raise
        found = PolicyRun("train", path, path)  # an empty folder: say what a run directory holds
    where = found.policy_path
    if found.kind == "generate" and where.is_dir() and (path / GENERATE_BEST_DIR / POLICY_FILE).is_file():
        where = path / GENERATE_BEST_DIR / POLICY_FILE  # the median final seed's policy
    if where.is_file():
        policy = OnnxPolicy(where, task=_trained_task(where.parent) or found.task)
    elif (where / POLICY_FILE).is_file():
        policy = OnnxPolicy(where / POLICY_FILE, task=_trained_task(where))
    elif found.seeds:
        raise ValueError(f"{str(where)!r} is a seed group ({len(found.seeds)} policies): pass one of its seed_N/ "
                         "run directories, or evaluate them all with `robreward eval`")
    elif (where / CHECKPOINT_DIR / LATEST).is_file():
        from robreward.rl.runner import policy_from_checkpoint

        policy = TorchPolicy(policy_from_checkpoint(where / CHECKPOINT_DIR / LATEST))
        policy.task, policy.path = _trained_task(where), str(where)
    else:
        raise FileNotFoundError(
            f"run directory {str(where)!r} has neither {POLICY_FILE} nor {CHECKPOINT_DIR}/{LATEST}: "
            "train it first (robreward train --out DIR) or pass a policy.onnx file")
    if task is not None:
        from robreward.envs.registry import get_task

        check_policy_task(policy, get_task(task))
    return policy


def write_model_card(run_dir: str | os.PathLike, config: dict, spec, steps: int, eval_result: dict | None = None,
                     extra: dict | None = None) -> Path:
    """MODEL_CARD.md beside policy.onnx: task and version, reward source, steps, seeds, eval numbers
    (robreward.rundir.render_model_card; written atomically)."""
    return RunDir(run_dir).write_model_card(config, spec, steps, eval_result, extra)
