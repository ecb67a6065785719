"""fer_utils: the reusable code behind the FER2013 notebooks (data, models, training, reports).

Importing the package sets three TensorFlow environment defaults, each unless the user has set it:

* ``TF_CPP_MIN_LOG_LEVEL=3`` quietens the C++ start-up log (CUDA probing on CPU-only machines), so
  notebook outputs stay readable.
* ``ONEDNN_MAX_CPU_ISA=AVX2`` keeps oneDNN off its AVX-512 kernels. On a CPU with AVX-512 (where
  TensorFlow 2.21 turns oneDNN on by default) training mini-Xception on the full Training split
  crashed in its first epoch in all five runs we tried, 6 and 7 classes: a segmentation fault,
  "double free or corruption", "malloc(): unaligned tcache chunk" (AMD EPYC Zen 4; compare the
  oneDNN memory corruption in tensorflow/tensorflow#117700). Capped at AVX2 the same run trains,
  and faster there (52 against 65 ms a step, one run each). oneDNN reads the variable when it
  first runs, so it has to be set before any TensorFlow operation, which importing this package
  first does.
* ``TF_ENABLE_ONEDNN_OPTS=1`` on x86-64. TensorFlow turns oneDNN on by itself only on CPUs with
  AVX-512-era extensions; on an AVX2-only CPU (AMD EPYC, 2 cores) it stayed off, and the own
  network trained on Eigen's kernels at 48 images a second, against 77 with oneDNN on (medians of
  three alternating runs of ``benchmarks/bench_architectures.py --only "fer_net 32-256 x2"``,
  1,536 faces, 2 rounds each): 1.6 times the speed; about 1.25 times in the training runs of that
  machine (``reports/benchmarks.md``). Capped at AVX2 as above, it is the
  configuration every AVX-512 machine of this project has trained with. On other CPU families
  (ARM) TensorFlow's own choice stands.
"""

import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
