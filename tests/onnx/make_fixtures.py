#!/usr/bin/env python3
"""Makes the fixtures of pixal's ONNX background-removal tests (tests/remove_bg.rs).

    python3 tests/onnx/make_fixtures.py        # needs numpy, pillow, onnx, opencv-python-headless
                                               # (onnxruntime, when present, cross-checks the model)

Writes, next to this script:
  tiny_u2net.onnx      a tiny model with U2-Net's interface: input [1, 3, 320, 320] float32, first
                       output [1, 2, 320, 320] whose channel 0 is the known function
                           f(x) = (0.5 * x[0] + (-0.25) * x[1]) + 0.5 * x[2]
                       (channel 1 is -f, so taking the wrong channel inverts the mask), and a second
                       output (-f again) that must be ignored. The weights are powers of two, so every
                       product is exact and ONNX Runtime's float32 result equals numpy's bit for bit.
  small.png, medium.png  inputs: 97x61 (upscaled to 320x320) and 389x241 (downscaled in x, upscaled in y).
  expected/<name>_resized.png    the 320x320 RGB that PIL's Lanczos makes (what rembg feeds the model)
  expected/<name>_mask320.png    the 320x320 mask after min-max, *255 and truncation to uint8
  expected/<name>_mask.png       that mask resized back to the input size with PIL's Lanczos
  expected/small_cutout.png      rembg's default cut-out (PIL Image.composite of the photo over
                                 transparent black through the mask)
  expected/<name>_post.png       rembg's post_process(mask): OpenCV opening (3x3 ellipse),
                                 GaussianBlur 5x5 sigma 2, binarised at 127
  expected/tensor_samples.json   samples of the float32 model input for the u2net contract (320,
                                 ImageNet mean/std) and the isnet-general-use one (1024, mean 0.5, std 1)

Every expected value is computed the way rembg (sessions/base.py normalize, sessions/u2net.py
predict, bg.py naive_cutout/post_process) computes it: PIL for the resizes and the composite,
numpy for the arithmetic, OpenCV for the post-processing.
"""
import json
import os

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
EXP = os.path.join(HERE, "expected")
SIZE = 320
U2NET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), SIZE)
ISNET = ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0), 1024)


def make_model(path):
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, SIZE, SIZE])
    d0 = helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 2, SIZE, SIZE])
    d1 = helper.make_tensor_value_info("d1", TensorProto.FLOAT, [1, 1, SIZE, SIZE])
    consts = [
        helper.make_tensor("w_r", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("w_g", TensorProto.FLOAT, [], [-0.25]),
        helper.make_tensor("w_b", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("split", TensorProto.INT64, [3], [1, 1, 1]),
    ]
    nodes = [
        helper.make_node("Split", ["input.1", "split"], ["r", "g", "b"], axis=1),
        helper.make_node("Mul", ["r", "w_r"], ["r2"]),
        helper.make_node("Mul", ["g", "w_g"], ["g2"]),
        helper.make_node("Mul", ["b", "w_b"], ["b2"]),
        helper.make_node("Add", ["r2", "g2"], ["rg"]),
        helper.make_node("Add", ["rg", "b2"], ["f"]),
        helper.make_node("Neg", ["f"], ["nf"]),
        helper.make_node("Concat", ["f", "nf"], ["d0"], axis=1),
        helper.make_node("Neg", ["f"], ["d1"]),
    ]
    graph = helper.make_graph(nodes, "tiny_u2net", [x], [d0, d1], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def known_function(t):
    """The model's channel 0, in float32 exactly as ONNX Runtime evaluates it."""
    r, g, b = t[0, 0], t[0, 1], t[0, 2]
    return (r * np.float32(0.5) + g * np.float32(-0.25)) + b * np.float32(0.5)


def normalize(img, contract):
    """rembg sessions/base.py BaseSession.normalize."""
    mean, std, size = contract
    im = img.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    im_ary = np.array(im)
    im_ary = im_ary / max(np.max(im_ary), 1e-6)
    tmp = np.zeros((im_ary.shape[0], im_ary.shape[1], 3))
    for c in range(3):
        tmp[:, :, c] = (im_ary[:, :, c] - mean[c]) / std[c]
    return im, np.expand_dims(tmp.transpose((2, 0, 1)), 0).astype(np.float32)


def predict_mask(pred, size):
    """rembg sessions/u2net.py U2netSession.predict, after the model."""
    pred = pred[:, 0, :, :]
    ma, mi = np.max(pred), np.min(pred)
    pred = np.squeeze((pred - mi) / (ma - mi))
    m320 = Image.fromarray((pred * 255).astype("uint8"), mode="L")
    return m320, m320.resize(size, Image.Resampling.LANCZOS)


def post_process(mask):
    """rembg bg.py post_process."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.GaussianBlur(mask, (5, 5), sigmaX=2, sigmaY=2, borderType=cv2.BORDER_DEFAULT)
    return np.where(mask < 127, 0, 255).astype(np.uint8)


def make_image(w, h, seed):
    """Smooth gradients with hard-edged shapes (so Lanczos rings) and a little texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 40 + 150 * x / w
    img[..., 1] = 200 - 120 * y / h
    img[..., 2] = 90 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0)
    cx, cy = w * 0.55, h * 0.45
    disc = (x - cx) ** 2 + (y - cy) ** 2 < (min(w, h) * 0.3) ** 2
    img[disc] = [230, 210, 30]
    img[int(h * 0.1):int(h * 0.3), int(w * 0.1):int(w * 0.25)] = [10, 20, 250]
    img += rng.integers(-2, 3, size=img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), mode="RGB")


def main():
    os.makedirs(EXP, exist_ok=True)
    model_path = os.path.join(HERE, "tiny_u2net.onnx")
    make_model(model_path)
    samples = {}
    rng = np.random.default_rng(11)
    for name, (w, h) in {"small": (97, 61), "medium": (389, 241)}.items():
        img = make_image(w, h, seed=w)
        img.save(os.path.join(HERE, f"{name}.png"))
        resized, tensor = normalize(img, U2NET)
        resized.save(os.path.join(EXP, f"{name}_resized.png"))
        pred = known_function(tensor)
        model_out = np.stack([pred, -pred])[None]
        try:
            import onnxruntime as ort

            sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
            got = sess.run(None, {"input.1": tensor})[0]
            assert np.array_equal(got, model_out), "onnxruntime disagrees with the known function"
            print(f"{name}: onnxruntime output equals the known function bit for bit")
        except ImportError:
            print("onnxruntime not installed: the model was not cross-checked")
        m320, mask = predict_mask(model_out, img.size)
        m320.save(os.path.join(EXP, f"{name}_mask320.png"))
        mask.save(os.path.join(EXP, f"{name}_mask.png"))
        if name == "small":  # one is enough to pin the composite's rounding; keeps fixtures small
            empty = Image.new("RGBA", img.size, 0)
            Image.composite(img, empty, mask).save(os.path.join(EXP, f"{name}_cutout.png"))
        Image.fromarray(post_process(np.array(mask))).save(os.path.join(EXP, f"{name}_post.png"))
        for cname, contract in {"u2net": U2NET, "isnet": ISNET}.items():
            _, t = normalize(img, contract)
            n = t.shape[2]
            idx = [(int(c), int(yy), int(xx)) for c, yy, xx in zip(
                rng.integers(0, 3, 64), rng.integers(0, n, 64), rng.integers(0, n, 64))]
            idx += [(0, 0, 0), (2, n - 1, n - 1)]
            samples[f"{name}/{cname}"] = {
                "size": n,
                "samples": [[c, yy, xx, float(t[0, c, yy, xx])] for c, yy, xx in idx],
                "sum": float(t.astype(np.float64).sum()),
            }
    with open(os.path.join(EXP, "tensor_samples.json"), "w") as f:
        json.dump(samples, f, indent=1)
    print("fixtures written to", HERE)


if __name__ == "__main__":
    main()
