"""Trains a tiny network for one short epoch under a ``tf.distribute`` strategy (see test_distributed.py).

Usage:
  python distributed_worker.py mirrored RUN_DIR
      MirroredStrategy over two logical CPU devices of this process (the one-machine, several-GPU case).
  python distributed_worker.py multiworker RUN_ROOT INDEX PORT0,PORT1
      worker INDEX of a two-process MultiWorkerMirroredStrategy cluster on loopback (TF_CONFIG).
Prints one JSON line: replicas in sync and a checksum of the trained model's trainable weights.
"""

import json
import os
import sys

mode, run_dir = sys.argv[1], sys.argv[2]
if mode == "multiworker":
    index, ports = int(sys.argv[3]), sys.argv[4].split(",")
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )
    run_dir = f"{run_dir}/worker{index}"  # each worker checkpoints into its own folder, as Keras advises

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tiny_models import tiny_cnn  # noqa: E402

from fer_utils import config  # noqa: E402
from fer_utils.data.fer2013 import load_fer2013  # noqa: E402
from fer_utils.training.loop import TrainingConfig, train_model  # noqa: E402

if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

data = load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)
result = train_model(
    tiny_cnn,
    data.split("Training").subset(slice(0, 64)),
    data.split("PublicTest").subset(slice(0, 32)),
    run_dir,
    TrainingConfig(epochs=1, batch_size=16, augment=False, verbose=0),
    strategy=strategy,
)
checksum = float(sum(np.abs(np.asarray(weight)).sum() for weight in result.model.trainable_weights))
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "checksum": checksum}))
