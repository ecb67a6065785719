"""``train_model`` takes a ``tf.distribute`` strategy, so scaling out uses TensorFlow's own machinery:
several devices of one machine, and several workers (here two processes on loopback).

Each run happens in a subprocess, because logical devices and ``TF_CONFIG`` must be set before
TensorFlow starts.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from fer_utils.training.distribution import keras_compatible

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "helpers" / "distributed_worker.py"


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _result(process: subprocess.Popen) -> dict:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_mirrored_strategy_trains_on_two_replicas_and_checkpoints(tmp_path):
    outcome = _result(_start("mirrored", str(tmp_path)))
    assert outcome["replicas"] == 2
    assert np.isfinite(outcome["checksum"]) and outcome["checksum"] > 0
    assert (tmp_path / "best.keras").exists() and (tmp_path / "state.json").exists()


def test_two_workers_on_loopback_train_in_sync_to_identical_weights(tmp_path):
    ports = ",".join(str(port) for port in _free_ports(2))
    workers = [_start("multiworker", str(tmp_path), str(index), ports) for index in range(2)]
    try:
        outcomes = [_result(worker) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [outcome["replicas"] for outcome in outcomes] == [2, 2]
    # The gradients were all-reduced at every step, so both workers end with the same weights,
    # and both logged the same (cross-worker) loss and accuracy.
    assert outcomes[0]["checksum"] == pytest.approx(outcomes[1]["checksum"], rel=1e-6)
    logs = [pd.read_csv(tmp_path / f"worker{index}" / "training_log.csv") for index in range(2)]
    columns = ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(logs[0]) == 1 and np.isfinite(logs[0][columns].to_numpy()).all()
    pd.testing.assert_frame_equal(logs[0][columns], logs[1][columns])


def test_strategies_other_than_multi_worker_are_left_as_they_are():
    default = tf.distribute.get_strategy()
    assert keras_compatible(None) is None
    assert keras_compatible(default) is default
    assert default.reduce.__func__ is type(default).reduce
