"""Which operations of a frozen TensorFlow graph AWS DeepLens's model optimizer documents as supported.

``mo.optimize(..., platform='tf')`` wraps an OpenVINO Model Optimizer that converts only the
operations it knows, and TensorFlow 2 graphs can hold newer ones (``AddV2``, ``FusedBatchNormV3``),
so exports are checked against the developer guide's list (:data:`DEEPLENS_LAYERS_SOURCE`) instead
of failing on the device. The list is conservative (it omits ``DepthwiseConv2dNative`` although
MobileNet is listed as supported): a reported operation is a risk to check, not a certain failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import tensorflow as tf

DEEPLENS_LAYERS_SOURCE = (
    "AWS DeepLens Developer Guide, 'Supporting TensorFlow Layers' "
    "(awsdocs/aws-deeplens-user-guide, doc_source/deeplens-supported-framework-tensorflow-layers.md, "
    "commit 76cf9d8; https://docs.aws.amazon.com/deeplens/latest/dg/deeplens-supported-framework-tensorflow-layers.html)"
)

#: TensorFlow operation types on that page, verbatim (30 entries).
DEEPLENS_TENSORFLOW_LAYERS: frozenset[str] = frozenset(
    {
        "Add",
        "AvgPool",
        "BatchToSpaceND",
        "BiasAdd",
        "Const",
        "Conv2D",
        "Conv2DBackpropInput",
        "Identity",
        "Maximum",
        "MaxPool",
        "Mean",
        "Mul",
        "Neg",
        "Pad",
        "Placeholder",
        "Prod",
        "RandomUniform",
        "Range",
        "Relu",
        "Reshape",
        "Rsqrt",
        "Shape",
        "Softmax",
        "SpaceToBatchND",
        "Square",
        "Squeeze",
        "StopGradient",
        "Sub",
        "Sum",
        "Tile",
    }
)


def operation_counts(graph_def: tf.compat.v1.GraphDef) -> dict[str, int]:
    """How many nodes of each operation type the graph has, most frequent first."""
    return dict(Counter(node.op for node in _all_nodes(graph_def)).most_common())


def unsupported_operations(
    graph_def: tf.compat.v1.GraphDef, supported: Iterable[str] = DEEPLENS_TENSORFLOW_LAYERS
) -> dict[str, int]:
    """Operation types in ``graph_def`` (functions included) missing from ``supported``, with counts."""
    allowed = set(supported)
    return {op: count for op, count in sorted(operation_counts(graph_def).items()) if op not in allowed}


def _all_nodes(graph_def: tf.compat.v1.GraphDef) -> Iterable:
    """Top-level nodes and those inside library functions, which the optimizer would meet as well."""
    yield from graph_def.node
    for function in graph_def.library.function:
        yield from function.node_def
