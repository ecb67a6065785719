"""Entry point of the DeepLens Lambda bundle (handler ``lambda_function.function_handler``).

Greengrass imports a long-lived Lambda's module once and never calls its handler for camera work,
so, as in AWS's DeepLens samples, the inference loop is started by importing this module. That
happens only where the module sits flat at the root of the bundle: imported as
``fer_utils.edge.deeplens.lambda_function`` (a test, an IDE) it starts nothing.
"""

if __package__:
    from .inference_lambda import function_handler  # noqa: F401
else:
    from inference_lambda import function_handler, infinite_infer_run  # noqa: F401

    infinite_infer_run()
