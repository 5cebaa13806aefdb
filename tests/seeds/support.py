"""Support for the seed tests: the examples' Keras layers and a strict warnings context.

The seeds build models from ``tf.keras.layers.Dense`` and ``BatchNormalization``; the tests use
the layers the example scripts use (examples/layers.py: numpy functions of symtape Tensors with
fixed, seeded weights in ``st.Variable``s), so both run the same models.
"""

import contextlib
import importlib.util
import os
import warnings


def _example_layers():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "layers.py")
    spec = importlib.util.spec_from_file_location("symtape_example_layers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_layers = _example_layers()
Dense, BatchNormalization = _layers.Dense, _layers.BatchNormalization


@contextlib.contextmanager
def no_warnings():
    """Turn every warning into an error, except numba's own compiler diagnostics.

    Used where symtape must stay silent (batch_jacobian of independent examples).
    """
    from numba.core.errors import NumbaWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=NumbaWarning)
        yield
