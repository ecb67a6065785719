"""fer_utils: the reusable code behind the FER2013 notebooks (data, models, training, reports).

Importing the package quietens TensorFlow's C++ start-up log (CUDA probing on CPU-only machines),
unless the user has set ``TF_CPP_MIN_LOG_LEVEL`` themselves, so notebook outputs stay readable.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
