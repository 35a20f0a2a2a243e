"""Shared setup of the RoboCLIP tests: a random vision-language model of a kind and reach's first expert demo
rendered to demo.mp4."""

from pathlib import Path

import pytest

from robreward.envs.registry import get_task
from robreward.envs.render import write_video
from robreward.feedback.vision.frames import demo_states, render_states
from robreward.feedback.vision.random_models import save_random_model

DEMOS = Path(__file__).parents[3] / "demos"


def roboclip_setup(root: Path, kind: str):
    """(root, model dir, reach's spec, the demo's frames [T, 32, 32, 3]) with ``root``/demo.mp4 written and a tiny
    random model of ``kind`` (clip, xclip) saved under ``root``."""
    from robreward.demos.format import DemoDataset

    model_dir = str(save_random_model(root / kind, kind=kind, size="tiny"))
    spec = get_task("reach")
    with DemoDataset(DEMOS / "reach-expert.h5", task=spec) as data:
        episode = data.episode(0)
    frames = render_states(spec, demo_states(episode, spec), (32, 32)).numpy()
    write_video(root / "demo.mp4", frames, fps=20)
    return root, model_dir, spec, frames


@pytest.fixture(scope="session")
def make_roboclip_setup():
    """roboclip_setup, for the modules' own module-scoped fixtures."""
    return roboclip_setup
