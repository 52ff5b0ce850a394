# The PyTorch recipe of docs/model-files.md ("Exports: the scaling and the
# class names"), line for line, run by test/model/export-interop.test.ts on
# the CSV example's export: prints the class names it predicts for the rows.
#   python3 torch_recipe.py MODEL.safetensors ROWS.json
# Where the safetensors package is not installed (Debian's python3-torch
# comes without it), safe_open and load_file are the format's few lines.
import json
import struct
import sys

import torch

try:
    from safetensors import safe_open
    from safetensors.torch import load_file
except ImportError:
    def _read(path):
        raw = open(path, 'rb').read()
        (n,) = struct.unpack('<Q', raw[:8])
        header = json.loads(raw[8:8 + n])
        return raw[8 + n:], header.pop('__metadata__', {}), header

    class safe_open:  # noqa: N801 (the safetensors name)
        def __init__(self, path, framework):
            self.meta = _read(path)[1]
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return False
        def metadata(self):
            return self.meta

    def load_file(path):
        data, _, header = _read(path)
        return {name: torch.frombuffer(bytearray(data[t['data_offsets'][0]:t['data_offsets'][1]]), dtype=torch.float32).reshape(t['shape']).clone()
                for name, t in header.items()}

path = sys.argv[1]
raw = json.load(open(sys.argv[2]))

# The docs' lines:
with safe_open(path, "pt") as f:
    info = json.loads(f.metadata()["inference"])
net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
net.load_state_dict(load_file(path), strict=False)
mean, scale = (torch.tensor(info["scaling"][k], dtype=torch.float64) for k in ("mean", "scale"))
x = ((torch.tensor(raw, dtype=torch.float64) - mean) / scale).float()  # raw: rows in info["featureNames"] order
labels = [info["classNames"][i] for i in net(x).argmax(-1)]

print(json.dumps(labels))
