# The PyTorch side of test/model/torch-interop.test.ts: builds the
# nn.Sequential that a dptrain safetensors export describes (its
# __metadata__.modules lines, evaluated in torch.nn), loads the state_dict
# with strict=True and predicts in eval mode.
#   python3 torch_predict.py MODEL.safetensors X.f32 BATCH OUT.f32
import json
import struct
import sys
from collections import OrderedDict

import torch
from torch import nn

path, x_path, batch, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with open(path, 'rb') as f:
    raw = f.read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
meta = header.pop('__metadata__')
data = raw[8 + n:]
state = {}
for name, t in header.items():
    a, b = t['data_offsets']
    state[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(t['shape']).clone()

modules = OrderedDict()
for line in meta['modules'].split('\n'):
    index, text = line.split(': ', 1)
    expr, _, caveat = text.partition(' [')
    if 'in front' in caveat:
        pad = caveat.split('put nn.', 1)[1].split(' in front', 1)[0]
        modules[index + 'pad'] = eval('nn.' + pad)
    if expr.startswith('Reshape'):
        raise SystemExit('Reshape has no nn module')
    modules[index] = eval('nn.' + expr)
net = nn.Sequential(modules)
net.load_state_dict(state, strict=True)
net.eval()
shape = [int(d) for d in meta['input_shape'].strip('[]').split(',')]
x = torch.frombuffer(bytearray(open(x_path, 'rb').read()), dtype=torch.float32).reshape([batch] + shape)
with torch.no_grad():
    y = net(x)
open(out_path, 'wb').write(y.contiguous().numpy().astype('float32').tobytes())
print(json.dumps({'modules': [str(m) for m in net], 'out': list(y.shape)}))
