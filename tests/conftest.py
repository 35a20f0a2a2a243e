import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import torch  # noqa: E402

# two cores shared between the simulator's threads and torch
torch.set_num_threads(1)
