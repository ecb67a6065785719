"""Which operations of a frozen TensorFlow graph AWS DeepLens's model optimizer documents as supported.

DeepLens (2017-2022) ran models through ``mo.optimize(model_name, width, height, platform='tf')``,
a wrapper around Intel's OpenVINO Model Optimizer of 2018-2019, which only converts graphs made of
operations it knows. A graph exported from TensorFlow 2 can contain operations that did not exist
when that optimizer was written (``AddV2`` arrived in TensorFlow 1.14, ``FusedBatchNormV3`` in
1.15), so the export checks its graph against the documented list instead of finding out on the
device.

The list below is the DeepLens developer guide's page "Supporting TensorFlow Layers", as published
in the guide's source repository (awsdocs/aws-deeplens-user-guide, file
doc_source/deeplens-supported-framework-tensorflow-layers.md, commit 76cf9d8; online at
https://docs.aws.amazon.com/deeplens/latest/dg/deeplens-supported-framework-tensorflow-layers.html).
It is conservative: the same guide lists MobileNet as a supported TensorFlow model although
``DepthwiseConv2dNative`` (which MobileNet is made of) is not on the page, and OpenVINO's own
"Supported Framework Layers" page lists many more operations. An operation reported here is
therefore "not documented for DeepLens", which is a risk to check on the device, not a certain
failure.
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
