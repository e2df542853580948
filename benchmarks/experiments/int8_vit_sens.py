"""Sensitivity of ViT-B dynamic INT8 logit cosine to which weight MatMuls are quantised (accuracy only)."""
import sys, json, re
from pathlib import Path
import numpy as np, onnx, onnxruntime as ort
from onnxruntime import quantization as q
import cv2

work = Path("/work/exp/vit")
pre = work / "pre.onnx"
proto = onnx.load(str(pre), load_external_data=False)
inits = {i.name for i in proto.graph.initializer}
wmm = [n.name for n in proto.graph.node if n.op_type in ("MatMul", "Gemm", "Conv", "ConvTranspose") and any(i in inits for i in n.input)]
imgs = sorted(Path("/work/shared/datasets/cfd/images").glob("*"))[:4]
x = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (448, 448)) for p in imgs]).astype(np.float32)
x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
def sess(path):
    so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
def run(s):
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i+1]})[0] for i in range(len(x))])
def cos(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
refp = work / "ref.npy"
if refp.exists():
    ref = np.load(refp)
else:
    ref = run(sess(pre)); np.save(refp, ref)
def sel(pattern):
    return [n for n in wmm if re.search(pattern, n)]
variants = {
    "enc_blocks": r"image_encoder/blocks",
    "qkv": r"blocks\.\d+/attn/qkv", "proj": r"blocks\.\d+/attn/proj",
    "lin1": r"blocks\.\d+/mlp/lin1", "lin2": r"blocks\.\d+/mlp/lin2",
    "decoder": r"^/(transformer|output)", "neck_patch": r"neck|patch_embed",
}
for b in range(12):
    variants[f"block{b}"] = rf"blocks\.{b}/"
only = sys.argv[1:] or list(variants)
resf = work / "sens.json"
res = json.load(open(resf)) if resf.exists() else {}
for name in only:
    pat = variants.get(name, name)
    nodes = sel(pat)
    out = work / "tmp_q.onnx"
    q.quantize_dynamic(str(pre), str(out), per_channel=True, reduce_range=False, weight_type=q.QuantType.QInt8,
                       nodes_to_quantize=nodes, extra_options={"MatMulConstBOnly": True})
    y = run(sess(out))
    iou = float(((y.argmax(1) == 1) & (ref.argmax(1) == 1)).sum() / max(1, ((y.argmax(1) == 1) | (ref.argmax(1) == 1)).sum()))
    res[name] = {"nodes": len(nodes), "cosine": cos(y, ref), "mask_iou": iou}
    print(name, res[name], flush=True)
    json.dump(res, open(resf, "w"), indent=2)
