# PyTorch's side of `npm run bench` (bench/bench-worker.ts runTorch): the
# fixed CNN of issue 22 (conv 8@5x5 + ReLU, max pool 2, conv 16@5x5 + ReLU,
# max pool 2, flatten, linear 10), one thread, Adam, on the batches the
# worker wrote (the trainer's sampler); `cnn` times training steps,
# `cnn-predict` the forward pass. Prints one JSON line of WorkerResult's
# fields.
#   python3 bench/torch_cnn.py DIR TASK_JSON
import json
import os
import sys
import time

import torch
from torch import nn

folder, task = sys.argv[1], json.loads(sys.argv[2])
torch.set_num_threads(1)
torch.manual_seed(1)
x_all = torch.frombuffer(bytearray(open(os.path.join(folder, 'x.f32'), 'rb').read()), dtype=torch.float32).reshape(-1, 1, 28, 28)
y_all = torch.frombuffer(bytearray(open(os.path.join(folder, 'y.f32'), 'rb').read()), dtype=torch.float32).long()
batches = torch.frombuffer(bytearray(open(os.path.join(folder, 'batches.i32'), 'rb').read()), dtype=torch.int32)
B = task['batch']
batches = batches.reshape(-1, B)

net = nn.Sequential(
    nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(256, 10))
assert sum(p.numel() for p in net.parameters()) == 5994
opt = torch.optim.Adam(net.parameters(), lr=task['lr'])
loss_fn = nn.CrossEntropyLoss()
predict = task['model'] == 'cnn-predict'
if predict:
    net.eval()


def step(s):
    idx = batches[s % batches.shape[0]]
    idx = idx[idx >= 0].long()
    x, y = x_all[idx], y_all[idx]
    if predict:
        with torch.no_grad():
            out = net(x)
        return float(out[0, 0]), len(idx)
    opt.zero_grad()
    loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()
    return float(loss), len(idx)


s = 0
w0 = time.perf_counter()
step(s)
s += 1
while time.perf_counter() - w0 < task['warmupSeconds']:
    step(s)
    s += 1
steps = samples = 0
loss_sum = 0.0
t0 = time.perf_counter()
c0 = time.process_time()
elapsed = 0.0
while steps < task['minSteps'] or elapsed < task['seconds']:
    loss, rows = step(s)
    s += 1
    loss_sum += loss
    samples += rows
    steps += 1
    elapsed = time.perf_counter() - t0
cpu = time.process_time() - c0
print(json.dumps({
    'steps': steps, 'seconds': elapsed, 'cpuSeconds': cpu,
    'samplesPerSec': samples / elapsed, 'samplesPerCpuSec': samples / cpu,
    'loss': loss_sum / steps,
    'detail': f'PyTorch {torch.__version__}, {torch.get_num_threads()} thread, mkldnn {torch.backends.mkldnn.is_available()}',
}))
