"""``run_tool``, the wrapper of every tool's ``main``."""
import torch.distributed as dist

from mmkd.apis import run_tool


def test_a_finished_run_shuts_its_process_group_down(tmp_path, monkeypatch):
    """Left to interpreter shutdown, a gloo rank can abort after the run
    finished (the launcher then reports a failure): the group is
    destroyed when ``main`` returns."""
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    calls = []
    for name in ('barrier', 'destroy_process_group'):
        def recorded(*args, _name=name, _call=getattr(dist, name), **kwargs):
            calls.append(_name)
            return _call(*args, **kwargs)
        monkeypatch.setattr(dist, name, recorded)
    try:
        run_tool(lambda argv: None)
        assert not dist.is_initialized()
        # The ranks meet first, so that none shuts down while another runs.
        assert calls == ['barrier', 'destroy_process_group']
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()

