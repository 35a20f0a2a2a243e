"""The recorded generate run of a capable LLM on push (../shared/transcripts/push-k4-2it) still
replays as written: its four iteration-0 programs pass every check (static, compiled in the
sandbox, dry run of the graph) and train through the compiled graph."""

import json
from pathlib import Path

import pytest

from robreward.cli.main import main as cli_main

TRANSCRIPT = Path(__file__).resolve().parents[2].parent / "shared" / "transcripts" / "push-k4-2it" / "transcript"


@pytest.mark.slow  # a generate run (about 12 s): make test-all
def test_the_recorded_push_run_replays_and_every_program_compiles(tmp_path, capsys):
    assert TRANSCRIPT.is_dir(), f"the shared transcript is missing: {TRANSCRIPT}"
    out = tmp_path / "gen"
    code = cli_main(["generate", "--task", "push", "--llm", f"replay:{TRANSCRIPT}", "--samples", "4",
                     "--iterations", "1", "--steps", "1024", "--envs", "8", "--final-seeds", "0",
                     "--eval-episodes", "2", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    for k in range(4):
        assert f"iter_00/cand_0{k}: passed" in stdout
        check = json.loads((out / "iter_00" / f"cand_0{k}" / "check.json").read_text())
        attempt = check["attempts"][-1]
        assert check["ok"] and attempt["ok"] and len(attempt["term_stats"]) >= 4, check
    assert (out / "best" / "reward.py").is_file()


@pytest.mark.slow  # a generate run with a final seed (about 10 s): make test-all
def test_eval_and_compare_accept_a_real_generate_run(tmp_path, capsys):
    """issue 20: every verb that takes a run accepts a generate run directory (its best policy,
    or its final seeds when it retrained): a tiny real run of the shipped reach transcript."""
    shipped = Path(__file__).resolve().parents[2] / "examples" / "transcripts" / "reach"
    out = tmp_path / "gen"
    assert cli_main(["generate", "--task", "reach", "--llm", f"replay:{shipped}", "--samples", "3",
                     "--iterations", "1", "--steps", "2048", "--envs", "8", "--eval-episodes", "2",
                     "--final-seeds", "1", "--final-steps", "2048", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli_main(["eval", str(out), "--episodes", "2"]) == 0
    capsys.readouterr()
    written = max(out.rglob("eval.json"), key=lambda p: p.stat().st_mtime)
    result = json.loads(written.read_text())
    assert result["task"] == "reach" and result["episodes"] == 2 and "success_rate" in result
    code = cli_main(["compare", str(out), "--out", str(tmp_path / "cmp")])
    assert code == 0, capsys.readouterr()
    assert (tmp_path / "cmp" / "compare.md").is_file()
