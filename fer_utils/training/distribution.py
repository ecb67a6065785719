"""``tf.distribute`` strategies that Keras 3's ``fit`` can train under, multi-worker included.

Keras 3.15 calls ``MultiWorkerMirroredStrategy.reduce`` with a nest and with ``axis=0`` on scalar
logs, which that strategy refuses (keras-team/keras#20585). :func:`keras_compatible` mends those two
calls only; the gradients' all-reduce stays the strategy's own (``docs/training.md`` has the story).
"""

from __future__ import annotations

import tensorflow as tf

_PATCHED = "_fer_utils_keras_compatible_reduce"


def keras_compatible(strategy: tf.distribute.Strategy | None) -> tf.distribute.Strategy | None:
    """``strategy``, with ``reduce`` mended for Keras's ``fit`` if it is a multi-worker strategy.

    Any other strategy (or ``None``) is returned as it is; calling this twice changes nothing more.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or getattr(
        strategy, _PATCHED, False
    ):
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
