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
DTYPES = {'F32': torch.float32, 'I64': torch.int64}
state = {}
for name, t in header.items():
    a, b = t['data_offsets']
    state[name] = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[t['dtype']]).reshape(t['shape']).clone()

def fed(cls_name, feed, *args, **kwargs):
    """The BatchNorm{1,2,3}d of a module line fed as its caveat says ('apply to x.transpose(1, 2)', ...):
    the same state_dict keys, and the class's own check of the fed tensor's rank."""
    steps = feed.split('.')[1:]

    class Fed(getattr(nn, cls_name)):
        def _get_name(self):
            return 'Fed' + cls_name

        def forward(self, x):
            z = x
            for step in steps:
                if step == 'transpose(1, 2)':
                    z = z.transpose(1, 2)
                elif step == 'movedim(-1, 1)':
                    z = z.movedim(-1, 1)
                elif step == 'flatten(2)':
                    moved = z.shape
                    z = z.flatten(2)
                else:
                    raise SystemExit(f'unknown feed {feed}')
            y = super().forward(z)
            for step in reversed(steps):
                if step == 'transpose(1, 2)':
                    y = y.transpose(1, 2)
                elif step == 'movedim(-1, 1)':
                    y = y.movedim(1, -1)
                else:
                    y = y.reshape(moved)
            return y

    return Fed(*args, **kwargs)


modules = OrderedDict()
for line in meta['modules'].split('\n'):
    index, text = line.split(': ', 1)
    expr, _, caveat = text.partition(' [')
    if 'in front' in caveat:
        pad = caveat.split('put nn.', 1)[1].split(' in front', 1)[0]
        modules[index + 'pad'] = eval('nn.' + pad)
    if expr.startswith('Reshape'):
        raise SystemExit('Reshape has no nn module')
    if 'apply to ' in caveat:
        feed = caveat.split('apply to ', 1)[1].rsplit(']', 1)[0]
        cls_name, rest = expr.split('(', 1)
        modules[index] = eval(f'fed({cls_name!r}, feed, {rest}')
    else:
        modules[index] = eval('nn.' + expr)
net = nn.Sequential(modules)
net.load_state_dict(state, strict=True)
net.eval()
shape = [int(d) for d in meta['input_shape'].strip('[]').split(',')]
x = torch.frombuffer(bytearray(open(x_path, 'rb').read()), dtype=torch.float32).reshape([batch] + shape)
with torch.no_grad():
    y = net(x)
open(out_path, 'wb').write(y.contiguous().numpy().astype('float32').tobytes())
tracked = {k: int(v) for k, v in net.named_buffers() if k.endswith('num_batches_tracked')}
print(json.dumps({'modules': [str(m) for m in net], 'out': list(y.shape), 'num_batches_tracked': tracked}))
