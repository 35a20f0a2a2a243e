"""How examples/transcripts/reach/ was made: `robreward generate` run once against a local fake
OpenAI-compatible server that serves the hand-written responses below (no live model was asked).

    .venv/bin/python examples/transcripts/reach/record.py        # rewrites call-*.json here

The responses are written to look like what a coding LLM answers (prose around a ```python
block): iteration 1 asks for 3 programs and gets two good ones and one that imports numpy (the
checks reject it, the repair request gets it fixed); iteration 2 asks again with the best
program and its reflection, and gets 3 revisions. The replay (`--llm replay:examples/transcripts/reach`)
then reruns the whole loop offline; the training numbers come from your machine.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = "handwritten-example"  # the model name the transcript records: not a real model
SETTINGS = dict(task="reach", samples=3, iterations=2, steps=30_000, final_seeds=1)  # the README's replay command

ITERATION_1 = [
    '''Here is a dense reward that pulls the grip point to the goal, with a bonus once it is there.

```python
import torch


def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    dist_temp = 0.1
    reach = torch.exp(-dist / dist_temp)
    bonus = 0.5 * (dist < 0.05).float()
    terms = {"reach": reach, "bonus": bonus}
    return reach + bonus, terms
```
''',
    '''I'll use numpy for the distance, which keeps the code short.

```python
import numpy as np
import torch


def compute_reward(state, action):
    dist = torch.from_numpy(np.linalg.norm(state.ee_to_goal.numpy(), axis=-1))
    reach = 1.0 - torch.tanh(dist / 0.2)
    effort = -0.01 * (action[:, :3] ** 2).sum(-1)
    terms = {"reach": reach, "effort": effort}
    return reach + effort, terms
```
''',
    '''A simple negative-distance reward with a small penalty on speed near the goal:

```python
import torch


def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    progress = -dist
    speed = torch.linalg.norm(state.ee_vel, dim=-1)
    settle = -0.05 * speed * (dist < 0.1).float()
    terms = {"progress": progress, "settle": settle}
    return progress + settle, terms
```
''',
]

REPAIR = '''You're right: only torch and math may be imported. Here is the same reward in torch.

```python
import torch


def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    reach_temp = 0.2
    reach = 1.0 - torch.tanh(dist / reach_temp)
    effort = -0.01 * (action[:, :3] ** 2).sum(-1)
    terms = {"reach": reach, "effort": effort}
    return reach + effort, terms
```
'''

ITERATION_2 = [
    '''The reach term carries most of the reward and the bonus arrives late; I sharpen the reach term near the
goal and make the bonus larger so that staying at the goal pays.

```python
import torch


def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    far_temp = 0.2
    near_temp = 0.03
    reach = 0.5 * torch.exp(-dist / far_temp) + 0.5 * torch.exp(-dist / near_temp)
    bonus = 1.0 * (dist < 0.05).float()
    terms = {"reach": reach, "bonus": bonus}
    return reach + bonus, terms
```
''',
    '''Keeping the structure, adding a term that rewards slowing down at the goal so the grip point stays there.

```python
import torch


def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    dist_temp = 0.1
    reach = torch.exp(-dist / dist_temp)
    at_goal = (dist < 0.05).float()
    bonus = 0.5 * at_goal
    speed = torch.linalg.norm(state.ee_vel, dim=-1)
    speed_temp = 0.1
    hold = 0.3 * at_goal * torch.exp(-speed / speed_temp)
    terms = {"reach": reach, "bonus": bonus, "hold": hold}
    return reach + bonus + hold, terms
```
''',
    '''A progress-based variant: reward the decrease of the distance along the velocity, plus closeness.

```python
import torch


def compute_reward(state, action):
    dist = torch.linalg.norm(state.ee_to_goal, dim=-1)
    direction = state.ee_to_goal / (dist[:, None] + 1e-6)
    approach_speed = (state.ee_vel * direction).sum(-1)
    approach = 0.2 * torch.clamp(approach_speed, -1.0, 1.0)
    dist_temp = 0.1
    reach = torch.exp(-dist / dist_temp)
    terms = {"approach": approach, "reach": reach}
    return approach + reach, terms
```
''',
]


class Handler(BaseHTTPRequestHandler):
    sampling_calls = 0

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        last = body["messages"][-1]["content"]
        if last.startswith("Checking the reward function code above"):
            texts = [REPAIR]
        else:
            texts = [ITERATION_1, ITERATION_2][min(Handler.sampling_calls, 1)][: body.get("n", 1)]
            Handler.sampling_calls += 1
        prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4  # about 4 characters per token
        completion_tokens = [len(t) // 4 for t in texts]
        reply = {"id": "example", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                             for i, t in enumerate(texts)],
                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": sum(completion_tokens),
                           "total_tokens": prompt_tokens + sum(completion_tokens)}}
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main() -> int:
    from robreward.codegen.loop import GenerateConfig, generate

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        generate(GenerateConfig(llm=MODEL, base_url=url, out=str(out), **SETTINGS), log=print)
        for old in HERE.glob("call-*.json"):
            old.unlink()
        for call in sorted((out / "transcript").glob("call-*.json")):
            shutil.copyfile(call, HERE / call.name)
        print((out / "report.md").read_text())
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
