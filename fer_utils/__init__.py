"""fer_utils: the reusable code behind the FER2013 notebooks (data, models, training, reports).

Importing the package sets two TensorFlow environment defaults, each unless the user has set it:

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
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

__version__ = "0.1.0"
