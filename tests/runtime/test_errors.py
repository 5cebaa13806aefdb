"""Bad input gives a clear error (or TensorFlow's documented None), never a silent wrong number.

Each error message must say what was wrong and what to do: the tests match on key words.
"""

import numpy as np
import pytest

import symtape as st
from tests.helpers import assert_close, to_numpy

# ---------------------------------------------------------------------------------------------
# batch_jacobian: ranks and batch sizes (ValueError, as TensorFlow)
# ---------------------------------------------------------------------------------------------


def test_batch_jacobian_rank0_source_seed_003():
    """Seed 003's first batch_jacobian example: a scalar Variable and a rank-1 target."""
    x = st.Variable(2.0)
    with st.GradientTape() as tape:
        y = np.stack([x**2, x**3])
    with pytest.raises(ValueError, match=r"(?i)rank") as info:
        tape.batch_jacobian(y, x)
    assert "jacobian" in str(info.value)


def test_batch_jacobian_rank1_target_and_source_seed_003():
    """Seed 003's second example: a rank-1 Variable; TensorFlow raises, so must we."""
    x = st.Variable([2.0, 3.0])
    with st.GradientTape() as tape:
        y = np.stack([x[0] ** 2, x[1] ** 3])
    with pytest.raises(ValueError, match=r"(?i)rank"):
        tape.batch_jacobian(y, x)


def test_batch_jacobian_rank1_target_rank2_source():
    x = st.constant([[1.0, 2.0], [3.0, 4.0]])
    with st.GradientTape() as tape:
        tape.watch(x)
        y = np.sum(x, axis=1)  # shape (2,): rank 1
    with pytest.raises(ValueError, match=r"(?i)rank"):
        tape.batch_jacobian(y, x)


def test_batch_jacobian_rank2_target_rank1_source():
    x = st.constant([1.0, 2.0, 3.0])
    with st.GradientTape() as tape:
        tape.watch(x)
        y = x[:, None] * x[None, :2]  # shape (3, 2)
    with pytest.raises(ValueError, match=r"(?i)rank"):
        tape.batch_jacobian(y, x)


def test_batch_jacobian_mismatched_batch_sizes():
    x = st.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # batch 3
    with st.GradientTape() as tape:
        tape.watch(x)
        y = x[:2] * 2.0  # batch 2
    with pytest.raises(ValueError, match=r"(?i)batch|first dim") as info:
        tape.batch_jacobian(y, x)
    message = str(info.value)
    assert "2" in message and "3" in message, f"message should give both sizes: {message}"


# ---------------------------------------------------------------------------------------------
# watch: only Tensors and Variables
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [np.ones(3), np.float64(2.0), 2.0, 3, [st.constant(1.0), np.ones(2)]],
    ids=["ndarray", "numpy-scalar", "float", "int", "list-with-ndarray"],
)
def test_watch_non_tensor_raises_type_error_suggesting_constant(value):
    with st.GradientTape() as tape:
        with pytest.raises(TypeError, match=r"(st|symtape)\.constant"):
            tape.watch(value)


# ---------------------------------------------------------------------------------------------
# targets not computed on the tape
# ---------------------------------------------------------------------------------------------


def test_gradient_of_constant_target_is_none_or_zero():
    x = st.constant([1.0, 2.0])
    y = st.constant(5.0)
    with st.GradientTape(persistent=True) as tape:
        tape.watch(x)
        _ = x * x
    assert tape.gradient(y, x) is None
    g = tape.gradient(y, x, unconnected_gradients=st.UnconnectedGradients.ZERO)
    assert g.shape == (2,) and g.dtype == np.float64
    assert np.all(to_numpy(g) == 0)


def test_gradient_of_target_computed_before_the_tape_is_none():
    x = st.constant(2.0)
    y = x * x  # no tape active
    with st.GradientTape(persistent=True) as tape:
        tape.watch(x)
    assert tape.gradient(y, x) is None
    assert_close(tape.gradient(y, x, unconnected_gradients="zero"), 0.0)


def test_gradient_of_target_computed_after_the_tape_is_none():
    x = st.constant(2.0)
    with st.GradientTape() as tape:
        tape.watch(x)
    y = x * x  # the tape has exited: not recorded
    assert tape.gradient(y, x) is None


# ---------------------------------------------------------------------------------------------
# integer sources
# ---------------------------------------------------------------------------------------------


def test_integer_source_gives_none_with_warning():
    x = st.constant([1, 2, 3])
    with pytest.warns(UserWarning, match=r"(?i)int|float|dtype"):
        with st.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        g = tape.gradient(y, x)
    assert g is None


# ---------------------------------------------------------------------------------------------
# non-persistent tapes
# ---------------------------------------------------------------------------------------------


def test_second_call_on_non_persistent_tape_raises_runtime_error():
    x = st.constant(2.0)
    with st.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match=r"persistent=True"):
        tape.gradient(y, x)


# ---------------------------------------------------------------------------------------------
# custom_gradient: wrong number or shape of gradients (ValueError naming the function)
# ---------------------------------------------------------------------------------------------


@st.custom_gradient
def product_with_one_gradient(a, b):
    def grad_fn(dy):
        return dy * b  # two inputs, one gradient

    return a * b, grad_fn


@st.custom_gradient
def square_with_three_gradients(x):
    def grad_fn(dy):
        return dy * x, dy * x, dy * x  # one input, three gradients

    return x * x, grad_fn


@st.custom_gradient
def sum_with_wrong_shape_gradient(x):
    def grad_fn(dy):
        return dy * st.constant([1.0, 1.0])  # x has shape (3,), this is (2,)

    return np.sum(x), grad_fn


def test_custom_gradient_too_few_gradients():
    a = st.constant(2.0)
    b = st.constant(3.0)
    with pytest.raises(ValueError, match="product_with_one_gradient") as info:
        with st.GradientTape() as tape:
            tape.watch([a, b])
            y = product_with_one_gradient(a, b)
        tape.gradient(y, [a, b])
    assert "2" in str(info.value) and "1" in str(info.value)


def test_custom_gradient_too_many_gradients():
    x = st.constant(2.0)
    with pytest.raises(ValueError, match="square_with_three_gradients"):
        with st.GradientTape() as tape:
            tape.watch(x)
            y = square_with_three_gradients(x)
        tape.gradient(y, x)


def test_custom_gradient_wrong_shape():
    x = st.constant([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="sum_with_wrong_shape_gradient") as info:
        with st.GradientTape() as tape:
            tape.watch(x)
            y = sum_with_wrong_shape_gradient(x)
        tape.gradient(y, x)
    assert "shape" in str(info.value).lower()


def test_custom_gradient_grad_fn_with_python_control_flow_is_an_error():
    """grad_fn is traced on placeholder values: an `if` on them must not pick a branch
    silently (it would give a wrong gradient)."""

    @st.custom_gradient
    def branchy(y):
        def backward(dy):
            if dy[0] > 0:
                return dy
            return -dy

        return y * 2.0, backward

    x = st.constant(np.ones(3))
    with st.GradientTape() as tape:
        tape.watch(x)
        y = np.sum(branchy(x))
    with pytest.raises(st.TracerConversionError, match="np.where"):
        tape.gradient(y, x)


# ---------------------------------------------------------------------------------------------
# np.stack of Tensors (one tape record): numpy's errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arrays, axis, error, words", [
    ([np.ones(3), np.ones(2)], 0, ValueError, "same shape"),
    ([np.ones(3), np.ones(3)], 2, IndexError, "out of bounds"),
    ([], 0, ValueError, "at least one array"),
])
def test_stack_errors_say_what_was_wrong(arrays, axis, error, words):
    tensors = [st.constant(a) for a in arrays]
    with pytest.raises(error, match=words):
        st.numpy_api.stack(tensors, axis=axis)  # what np.stack of Tensors runs


def test_stack_records_one_op_and_differentiates_along_any_axis():
    x = st.constant(np.array([0.5, 1.5, 2.5]))
    with st.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = np.stack([x * x, np.sin(x)], axis=1)
    assert y._rec.prim == "stack" and y.shape == (3, 2)
    J = to_numpy(tape.jacobian(y, x))
    expected = np.zeros((3, 2, 3))
    for i in range(3):
        expected[i, 0, i], expected[i, 1, i] = 2 * x.numpy()[i], np.cos(x.numpy()[i])
    assert_close(J, expected)
