"""One PKD and one VkD training step under torch.profiler (RetinaNet
R50 -> R18), and the operators whose self CPU time differs most:

    python tools/analysis/profile_step.py 800
    python tools/analysis/profile_step.py 64 --batch 1
"""
import argparse
import copy
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mmkd_lab import benchmark as B


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('size', type=int, nargs='?', default=800)
    parser.add_argument('--batch', type=int, default=2)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    student, teacher, c_s, c_t = B.setting_models('retinanet_r50_r18')
    raw = B.make_det_batch(args.batch, (args.size, args.size), seed=0)
    self_ms = {}
    for method in ('pkd', 'vkd'):
        model = B.build_method(method, student, teacher, c_s, c_t)
        data = model.data_preprocessor(copy.deepcopy(raw), True)
        step = B.make_step(method, model, data)
        step()  # warm-up
        start = time.perf_counter()
        step()
        print(f'{method}: step {time.perf_counter() - start:.2f} s')
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        self_ms[method] = {e.key: e.self_cpu_time_total / 1e3
                           for e in prof.key_averages()}
    ops = set(self_ms['pkd']) | set(self_ms['vkd'])
    gap = sorted(ops, key=lambda k: self_ms['pkd'].get(k, 0) -
                 self_ms['vkd'].get(k, 0))
    print('| op | vkd ms | pkd ms | vkd - pkd |\n|---|---|---|---|')
    for op in gap[:15]:
        v, p = self_ms['vkd'].get(op, 0), self_ms['pkd'].get(op, 0)
        print(f'| {op} | {v:.0f} | {p:.0f} | {v - p:.0f} |')


if __name__ == '__main__':
    main()
