"""Running the emotion model on an AWS DeepLens camera.

* :mod:`~fer_utils.edge.deeplens.inference_lambda`: the Lambda's loop (camera, faces, model, AWS IoT);
  :mod:`~fer_utils.edge.deeplens.lambda_function` is its entry point.
* :mod:`~fer_utils.edge.deeplens.project_stream`: annotated frames to the ``/tmp/results.mjpeg`` FIFO.
* :mod:`~fer_utils.edge.deeplens.cpu_model`: the Lambda's CPU backend (TFLite or Keras on TensorFlow).
* :mod:`~fer_utils.edge.deeplens.packaging`: ``python -m fer_utils deeplens-package``, the Lambda zip.
* :mod:`~fer_utils.edge.deeplens.fakes`: ``awscam``, ``mo`` and ``greengrasssdk`` for running off the device.

Bundled modules import only OpenCV, NumPy and the device libraries, on Python 3.7; nothing is
imported here, so importing the package never needs the device libraries.
"""
