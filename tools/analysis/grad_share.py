"""How the task loss's and the distillation terms' gradients share a
distilled student's update, per part of the student:

    python tools/analysis/grad_share.py configs/demo/dino/vkd_dino_shapes.py
    python tools/analysis/grad_share.py configs/demo/dino/vkd_dino_shapes.py \
        --checkpoint work_dirs/dino_compare/dino_vkd_seed0/iter_400.pth

For ``--batches`` training batches of the config's train dataloader (its
pipeline and augmentation), the gradient of the student's own loss
(``student.*``) and of the distillation terms (``distill.*``) are summed
separately over the batches (the mean direction an optimiser's momentum
follows) and compared per group of parameters (backbone, neck, encoder,
decoder, head, connectors): their norms, the ratio, the cosine between
them, and the share of the group's weights on which the distillation
gradient is the larger one (where Adam's per-weight step follows the
distillation terms rather than the task). Without ``--checkpoint`` the
student is at its initialisation; with one, at that training checkpoint
(a distillation run's, loaded strictly, weights only).
"""
import argparse
from collections import OrderedDict
from typing import Dict, Iterable, List, Tuple

import torch

GROUPS = ('backbone', 'neck', 'encoder', 'decoder', 'bbox_head')


def group_of(name: str) -> str:
    """The group of a parameter of the distillation model: the student's
    part (``architecture.<part>``), ``connectors`` (the distiller's), or
    ``other``."""
    parts = name.split('.')
    if parts[0] == 'architecture':
        return parts[1] if len(parts) > 2 and parts[1] in GROUPS else 'other'
    return 'connectors' if parts[0] == 'distiller' else 'other'


def share_table(names: List[str], task: List[torch.Tensor],
                distill: List[torch.Tensor]) -> Dict[str, Dict[str, float]]:
    """Per group (and ``all``): ``task`` and ``distill`` (gradient norms),
    ``ratio`` (distill / task), ``cosine`` and ``distill_wins`` (the share
    of the group's weights where ``|distill| > |task|``)."""
    flat = OrderedDict()
    for name, g_t, g_d in zip(names, task, distill):
        for group in (group_of(name), 'all'):
            flat.setdefault(group, ([], []))
            flat[group][0].append(g_t.reshape(-1))
            flat[group][1].append(g_d.reshape(-1))
    table = OrderedDict()
    order = GROUPS + ('other', 'connectors', 'all')
    for group in sorted(flat, key=order.index):
        ts, ds = flat[group]
        t, d = torch.cat(ts).double(), torch.cat(ds).double()
        t_norm, d_norm = t.norm().item(), d.norm().item()
        table[group] = dict(
            task=t_norm, distill=d_norm,
            ratio=d_norm / t_norm if t_norm > 0 else float('inf'),
            cosine=(t @ d).item() / (t_norm * d_norm)
            if t_norm > 0 and d_norm > 0 else 0.0,
            distill_wins=(d.abs() > t.abs()).double().mean().item())
    return table


def split_gradients(model, batches: Iterable[dict]
                    ) -> Tuple[List[str], List[torch.Tensor],
                               List[torch.Tensor]]:
    """The student's trainable parameters (and the connectors') and the
    gradients of the task loss and of the distillation terms, each summed
    over ``batches``."""
    named = [(n, p) for n, p in model.named_parameters()
             if p.requires_grad and not n.startswith('teacher.')]
    names = [n for n, _ in named]
    params = [p for _, p in named]
    task = [torch.zeros_like(p) for p in params]
    distill = [torch.zeros_like(p) for p in params]
    for batch in batches:
        data = model.data_preprocessor(batch, True)
        losses = model.loss(data['inputs'], data['data_samples'])
        parts = {}
        for prefix in ('student', 'distill'):
            parts[prefix], _ = model.parse_losses(
                {k: v for k, v in losses.items()
                 if k.startswith(prefix + '.')})
        for prefix, acc in (('student', task), ('distill', distill)):
            grads = torch.autograd.grad(parts[prefix], params,
                                        retain_graph=prefix == 'student',
                                        allow_unused=True)
            for a, g in zip(acc, grads):
                if g is not None:
                    a += g
    return names, task, distill


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint',
                        help="a training checkpoint of this config's model")
    parser.add_argument('--batches', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', default=[])
    args = parser.parse_args(argv)

    from mmengine.config import Config, DictAction
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    import mmkd  # noqa: F401  (registers mmkd's modules, safe loading)
    from mmkd.checkpoint import (
        CheckpointError,
        mismatch_report,
        read_checkpoint,
        state_dict_of,
    )
    from mmkd.engine.teacher_checkpoint import load_deferred_teacher

    cfg = Config.fromfile(args.config)
    options = argparse.ArgumentParser()
    options.add_argument('--o', nargs='+', action=DictAction)
    cfg.merge_from_dict(options.parse_args(
        ['--o'] + args.cfg_options).o if args.cfg_options else {})
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    load_deferred_teacher(model)  # from model.teacher_ckpt, as training
    if args.checkpoint:
        state = dict(state_dict_of(read_checkpoint(args.checkpoint,
                                                   '--checkpoint')))
        # Training checkpoints leave the frozen teacher out
        # (DropFrozenTeacherHook): it is the one just loaded.
        for key, value in model.state_dict().items():
            if key.startswith('teacher.'):
                state.setdefault(key, value)
        report = mismatch_report(model, state)
        if report is not None:
            raise CheckpointError(
                f'--checkpoint={args.checkpoint!r} does not fit the model of '
                f'{args.config}: {report}. Give the config the run was '
                'trained with (its copy in the run\'s work dir).')
        model.load_state_dict(state, strict=False)
    model.train()
    loader_cfg = dict(cfg.train_dataloader, num_workers=0,
                      persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == args.batches:
            break
    torch.manual_seed(args.seed)  # DINO's denoising queries are random
    names, task, distill = split_gradients(model, batches)
    table = share_table(names, task, distill)
    print(f'{args.config}, {args.checkpoint or "initialisation"}, '
          f'{len(batches)} batches')
    print('| group | task grad norm | distill grad norm | distill / task '
          '| cosine | weights where distill > task |')
    print('|---|---|---|---|---|---|')
    for group, row in table.items():
        print(f"| {group} | {row['task']:.4g} | {row['distill']:.4g} | "
              f"{row['ratio']:.2f} | {row['cosine']:.3f} | "
              f"{row['distill_wins']:.2f} |")


if __name__ == '__main__':
    main()
