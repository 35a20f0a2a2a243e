"""Vision: the frame pipeline (batched rendering, preprocessing), image encoders, and the image reward
models built on them (progress models with image inputs: robreward.feedback.progress; CLIP-style rewards).

Submodules are imported where used (they pull in OpenGL, OpenCV, transformers): ``frames``, ``encoders``.
"""

from robreward.rewards.spec import set_frame_renderer


def _render_recorded_states(spec, sim_states, size=(96, 96), camera=None):
    """The frames of recorded MuJoCo states (frames.render_states), for reward distances of image rewards."""
    from robreward.feedback.vision.frames import render_states

    return render_states(spec, sim_states, size=size, camera=camera)


set_frame_renderer(_render_recorded_states)  # robreward.rewards.spec: rewards and eval never import feedback
