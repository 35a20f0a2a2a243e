"""Vision: the frame pipeline (batched rendering, preprocessing), image encoders, and the image reward
models built on them (progress models with image inputs: robreward.feedback.progress; CLIP-style rewards).

Submodules are imported where used (they pull in OpenGL, OpenCV, transformers): ``frames``, ``encoders``.
"""
