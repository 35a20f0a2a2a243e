import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import torch  # noqa: E402

# two cores shared between the simulator's threads and torch
torch.set_num_threads(1)


def load_script(relative_path: str, name: str):
    """A repository script (benchmarks/*.py, scripts/*.py) imported as a module, for its functions."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / relative_path
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
