"""The Keras layers the seed pages use, as plain numpy on symtape Variables (fixed, seeded
weights): y = act(x @ W + b), and batch normalisation in training mode."""

import numpy as np

import symtape as st


class Dense:
    """``activation(x @ kernel + bias)`` with seeded glorot-uniform weights (tf.keras Dense)."""

    def __init__(self, n_in, units, activation=None, rng=None, dtype=np.float64):
        rng = np.random.default_rng(0) if rng is None else rng
        limit = np.sqrt(6.0 / (n_in + units))
        self.kernel = st.Variable(rng.uniform(-limit, limit, (n_in, units)).astype(dtype),
                                  name="kernel")
        self.bias = st.Variable(rng.uniform(-0.1, 0.1, (units,)).astype(dtype), name="bias")
        self.activation = activation

    @property
    def trainable_variables(self):
        return [self.kernel, self.bias]

    def __call__(self, x):
        y = x @ self.kernel + self.bias
        return y if self.activation is None else self.activation(y)


class BatchNormalization:
    """Batch normalisation in training mode: mean and variance over the batch axis."""

    def __init__(self, units, epsilon=1e-3, dtype=np.float64):
        self.epsilon = epsilon
        self.gamma = st.Variable(np.ones(units, dtype=dtype), name="gamma")
        self.beta = st.Variable(np.zeros(units, dtype=dtype), name="beta")

    def __call__(self, h, training=True):
        mu = np.mean(h, axis=0)
        var = np.mean((h - mu) ** 2, axis=0)
        return (h - mu) / np.sqrt(var + self.epsilon) * self.gamma + self.beta
