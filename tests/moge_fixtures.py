"""A small ONNX model with MoGe-2's ONNX interface, built with onnx's helper API.

Inputs ``image`` (1, 3, H, W) float RGB in 0..1 with dynamic H and W, and ``num_tokens`` (int64
scalar); outputs ``points`` (1, H, W, 3), ``normal`` (1, H, W, 3), ``mask`` (1, H, W) and
``metric_scale`` (1,), as microsoft/MoGe's docs/onnx.md lists them. Its depth comes from a 1x1
convolution with random weights; its point map is that depth seen by a pinhole camera of
focal length ``FOCAL`` (relative to half the image diagonal), scaled by ``AFFINE_SCALE`` and moved
by ``-AFFINE_SHIFT`` along z, so only the focal and shift recovery can turn it back into depth.
``metric_scale`` is ``num_tokens / 1000``, so a test sees the tokens reach the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FOCAL = 1.3
AFFINE_SCALE = 0.45
AFFINE_SHIFT = 0.8
MASK_LOGIT = 6.0  # sigmoid(6) > 0.5: every pixel valid


def weights(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (1, 3, 1, 1)).astype(np.float32), rng.normal(0.0, 0.5, (1,)).astype(np.float32)


def true_depth(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The depth the model encodes for ``rgb`` (H, W, 3 uint8): 1.5 + sigmoid(conv(rgb)), before any scale."""
    w, b = weights(seed)
    x = rgb.astype(np.float64) / 255.0
    logit = x @ w[0, :, 0, 0].astype(np.float64) + float(b[0])
    return 1.5 + 1.0 / (1.0 + np.exp(-logit))


def build(path: Path, seed: int = 0, *, static: bool = False) -> Path:
    """Write the model to ``path``; ``static`` leaves out the ``num_tokens`` input (its scale is then 1.8)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = weights(seed)

    def const(name: str, value: float | list[float] | np.ndarray, dtype: type = np.float32) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    inits = [
        numpy_helper.from_array(w, "conv_w"), numpy_helper.from_array(b, "conv_b"),
        const("one_half", 0.5), const("c15", 1.5), const("two", 2.0), const("focal", FOCAL),
        const("scale", AFFINE_SCALE), const("shift", AFFINE_SHIFT), const("mask_logit", MASK_LOGIT),
        const("milli", 1e-3), const("static_tokens", [1800.0]),
        const("i0", 0, np.int64), const("i1", 1, np.int64), const("i2", [2], np.int64), const("i3", [3], np.int64),
        const("row_shape", [1, 1, -1, 1], np.int64), const("col_shape", [1, 1, 1, -1], np.int64),
        const("one_shape", [1], np.int64), const("axis1", [1], np.int64),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["image", "conv_w", "conv_b"], ["logit"]),
        n("Sigmoid", ["logit"], ["sig"]),
        n("Add", ["sig", "c15"], ["z"]),  # (1, 1, H, W) the true depth
        n("Shape", ["image"], ["shape"]),
        n("Gather", ["shape", "i2"], ["h1"]), n("Gather", ["shape", "i3"], ["w1"]),
        n("Squeeze", ["h1"], ["h"]), n("Squeeze", ["w1"], ["w"]),
        n("Range", ["i0", "h", "i1"], ["rows_i"]), n("Range", ["i0", "w", "i1"], ["cols_i"]),
        n("Cast", ["rows_i"], ["rows"], to=TensorProto.FLOAT), n("Cast", ["cols_i"], ["cols"], to=TensorProto.FLOAT),
        n("Cast", ["h"], ["hf"], to=TensorProto.FLOAT), n("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
        n("Mul", ["hf", "hf"], ["h2"]), n("Mul", ["wf", "wf"], ["w2"]), n("Add", ["h2", "w2"], ["d2"]),
        n("Sqrt", ["d2"], ["diag"]), n("Mul", ["diag", "one_half"], ["half_diag"]),
        n("Mul", ["hf", "one_half"], ["cy"]), n("Mul", ["wf", "one_half"], ["cx"]),
        n("Add", ["rows", "one_half"], ["rows_c"]), n("Sub", ["rows_c", "cy"], ["rows_o"]),
        n("Add", ["cols", "one_half"], ["cols_c"]), n("Sub", ["cols_c", "cx"], ["cols_o"]),
        n("Div", ["rows_o", "half_diag"], ["v1"]), n("Div", ["cols_o", "half_diag"], ["u1"]),
        n("Reshape", ["v1", "row_shape"], ["v"]), n("Reshape", ["u1", "col_shape"], ["u"]),
        n("Mul", ["u", "z"], ["uz"]), n("Div", ["uz", "focal"], ["x"]),
        n("Mul", ["v", "z"], ["vz"]), n("Div", ["vz", "focal"], ["y"]),
        n("Sub", ["z", "shift"], ["zs"]),
        n("Concat", ["x", "y", "zs"], ["p_nchw"], axis=1),
        n("Mul", ["p_nchw", "scale"], ["p_scaled"]),
        n("Transpose", ["p_scaled"], ["points"], perm=[0, 2, 3, 1]),
        n("Transpose", ["p_nchw"], ["normal_raw"], perm=[0, 2, 3, 1]),
        n("LpNormalization", ["normal_raw"], ["normal"], axis=-1, p=2),
        n("Mul", ["z", "one_half"], ["z0"]), n("Sub", ["z0", "z0"], ["zero"]),
        n("Add", ["zero", "mask_logit"], ["mask_logit_map"]), n("Sigmoid", ["mask_logit_map"], ["mask4"]),
        n("Squeeze", ["mask4", "axis1"], ["mask"]),
    ]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])]
    if static:
        nodes.append(n("Identity", ["static_tokens"], ["tokens_f"]))
    else:
        inputs.append(helper.make_tensor_value_info("num_tokens", TensorProto.INT64, []))
        nodes.append(n("Cast", ["num_tokens"], ["tokens_s"], to=TensorProto.FLOAT))
        nodes.append(n("Reshape", ["tokens_s", "one_shape"], ["tokens_f"]))
    nodes.append(n("Mul", ["tokens_f", "milli"], ["metric_scale"]))
    outputs = [
        helper.make_tensor_value_info("points", TensorProto.FLOAT, [1, "height", "width", 3]),
        helper.make_tensor_value_info("normal", TensorProto.FLOAT, [1, "height", "width", 3]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, "height", "width"]),
        helper.make_tensor_value_info("metric_scale", TensorProto.FLOAT, [1]),
    ]
    graph = helper.make_graph(nodes, "moge_like", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="monocle-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
