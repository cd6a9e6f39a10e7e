"""Training with torchrun: two CPU processes (gloo) give the single process's model for the same global batch, and a
killed DDP run resumes exactly."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import torch

from conftest import TINY_COMPARATOR
from genuine.cli import main as cli

ARGS = [*TINY_COMPARATOR, "--train-backbone", "--epochs", "3", "--patience", "3", "--batch", "8",
        "--loader-workers", "0"]


def _torchrun(data, out, *extra, args=ARGS) -> subprocess.Popen:
    with socket.socket() as s:   # a free port for the rendezvous: tests may run beside other jobs
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "genuine", "train",
                             str(data), "--out", str(out), *args, *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_two_processes_train_the_single_process_model_and_resume_exactly(synth320, tmp_path):
    torch.set_num_threads(1)
    assert cli(["train", str(synth320), "--out", str(tmp_path / "one"), *ARGS]) == 0
    p = _torchrun(synth320, tmp_path / "ddp")
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    one, ddp = _weights(tmp_path / "one" / "last.pt"), _weights(tmp_path / "ddp" / "last.pt")
    for k in one:   # the same global batches, the gradient averaged over the two halves: float tolerance
        assert torch.allclose(one[k].float(), ddp[k].float(), atol=1e-4, rtol=1e-3), k
    assert (tmp_path / "ddp" / "best.pt").exists() and out.count("epoch 1/3") == 1   # rank 0 alone reports

    # killed after its first epoch (every process), then resumed: the straight run's weights again
    p = _torchrun(synth320, tmp_path / "crash")
    last, deadline = tmp_path / "crash" / "last.pt", time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if last.exists() and torch.load(last, weights_only=True)["epoch"] >= 0:
            break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert torch.load(last, weights_only=True)["epoch"] < 2, "the run finished before it could be killed"
    p = _torchrun(synth320, tmp_path / "crash", "--resume")
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    resumed = _weights(last)
    for k in ddp:
        assert torch.allclose(ddp[k].float(), resumed[k].float(), atol=1e-6), k


def test_torchrun_refuses_the_frozen_mode(synth320, tmp_path):
    """Data parallelism is for the backbone that learns; the frozen mode says so instead of training twice."""
    p = _torchrun(synth320, tmp_path / "frozen", args=[*TINY_COMPARATOR, "--epochs", "1"])
    out, _ = p.communicate(timeout=300)
    assert p.returncode != 0 and "data-parallel training is for --train-backbone" in out
    assert not (tmp_path / "frozen" / "last.pt").exists()
