"""``tf.distribute`` strategies that Keras 3's ``fit`` can train under, multi-worker included.

``train_model`` takes any ``tf.distribute`` strategy. ``MirroredStrategy`` (several GPUs of one
machine) works with Keras 3.15 as it is. ``MultiWorkerMirroredStrategy`` (several machines, each
one process) does not (keras-team/keras#20585, tensorflow/tensorflow#72388), for two reasons, both
in how Keras calls the strategy's ``reduce``:

1. Before the first epoch, Keras reduces a whole input batch, an ``(images, targets)`` pair, in one
   call. ``MultiWorkerMirroredStrategy.reduce`` takes one value, not a nest (TensorFlow's own
   ``TODO: support value being a nest``), and fails with "Attempt to convert a value (PerReplica...)".
2. After every step, Keras reduces each scalar log (loss, accuracy) with ``axis=0``, which fails
   with "Invalid reduction dimension 0 for input with 0 dimensions".

:func:`keras_compatible` wraps the strategy's ``reduce`` so that it reduces a nest leaf by leaf and
a scalar across replicas only, which is what Keras asks for in both places. The all-reduce of the
gradients, the part that keeps the workers in sync, is the strategy's own and is not touched.
"""

from __future__ import annotations

import tensorflow as tf

_PATCHED = "_fer_utils_keras_compatible_reduce"


def keras_compatible(strategy: tf.distribute.Strategy | None) -> tf.distribute.Strategy | None:
    """``strategy``, with ``reduce`` mended for Keras's ``fit`` if it is a multi-worker strategy.

    Any other strategy (or ``None``) is returned as it is; calling this twice changes nothing more.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or getattr(strategy, _PATCHED, False):
        return strategy
    reduce_one = strategy.reduce

    def reduce_leaf(reduce_op, value, axis):
        if value is None:  # an absent sample weight, say
            return None
        # A scalar has no batch axis to reduce along: reduce it across replicas only.
        rank = strategy.experimental_local_results(value)[0].shape.rank
        return reduce_one(reduce_op, value, axis=None if rank == 0 else axis)

    def reduce(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda leaf: reduce_leaf(reduce_op, leaf, axis), value)

    strategy.reduce = reduce
    setattr(strategy, _PATCHED, True)
    return strategy
