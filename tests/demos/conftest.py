import pytest
import torch

from robreward.demos.record import record

@pytest.fixture(scope="session")
def reach_file(tmp_path_factory):
    """4 reach expert episodes, recorded once for the tests that only read."""
    path = tmp_path_factory.mktemp("demos") / "reach-expert.h5"
    record("reach", "expert", 4, path, seed=0, num_envs=4, progress=False)
    return path


@pytest.fixture
def random_policy():
    """A factory: random_policy(act_dim, seed) -> callable obs [B, D] -> uniform actions in [-1, 1]."""

    def make(act_dim, seed=0):
        gen = torch.Generator().manual_seed(seed)
        return lambda obs: torch.rand(obs.shape[0], act_dim, generator=gen) * 2 - 1

    return make


@pytest.fixture
def watch_reads():
    """watch_reads(*paths) -> context manager collecting inotify open/read events on `paths`
    (Linux): proof that a command never opened the file a hostile dataset points at."""
    import contextlib
    import ctypes
    import os
    import struct

    in_access, in_open = 0x1, 0x20

    @contextlib.contextmanager
    def watch(*paths):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK)
        assert fd >= 0, f"inotify_init1 failed: errno {ctypes.get_errno()}"
        for path in paths:
            assert libc.inotify_add_watch(fd, os.fsencode(str(path)), in_access | in_open) >= 0, path
        events = []
        try:
            yield events
        finally:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                data = b""
            while data:
                _, mask, _, length = struct.unpack_from("iIII", data)
                events.append(mask)
                data = data[16 + length:]
            os.close(fd)

    return watch


@pytest.fixture
def cli(capsys):
    """cli(*argv) -> (exit code, stdout, stderr) of `robreward ARGV` run in this process."""
    from robreward.cli.main import main

    def run(*argv):
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
