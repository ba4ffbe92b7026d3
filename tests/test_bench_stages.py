"""bench/tracking_fps.py's stage breakdown: torch.profiler's Python call events matched to the stage functions by
their code, within the bench's per-frame ``record_function`` ranges, a call inside a call of its own stage counted
once. Durations are only compared with one another (no speed is asserted)."""
import importlib.util
import os

import torch
from torch.profiler import ProfilerActivity, profile, record_function

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_bench():
    spec = importlib.util.spec_from_file_location('tracking_fps',
                                                  os.path.join(PROJECT_ROOT, 'bench', 'tracking_fps.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inner(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


def outer(x: torch.Tensor, depth: int) -> torch.Tensor:
    return outer(inner(x), depth - 1) if depth else inner(x)


def test_stages_are_attributed_per_frame_and_counted_once():
    bench = load_bench()
    stage_of = bench.stage_matcher({'outer': (outer,), 'inner': (inner,), 'backward': (torch.Tensor.backward,)})
    frames = []
    for _ in range(2):
        with profile(activities=[ProfilerActivity.CPU], with_stack=True) as profiler:
            inner(torch.ones(3))   # outside the frame's range: not counted
            with record_function(bench.FRAME_RANGE):
                x = torch.ones(64, requires_grad=True)
                outer(x, depth=3).sum().backward()
        frames += bench.frame_stage_seconds(profiler.events(), stage_of, 'cpu')
    assert len(frames) == 2
    for frame in frames:
        assert set(frame) == {'track', 'outer', 'inner', 'backward'}
        # outer's four nested calls count as the outermost one's time only
        assert 0 < frame['inner'] < frame['outer'] < frame['track']
        assert frame['outer'] + frame['backward'] <= frame['track']


def test_every_stage_function_is_found_by_its_profiler_name():
    bench = load_bench()
    functions = bench.stage_functions()
    assert set(functions) == set(bench.STAGES) - {'track'}
    stage_of = bench.stage_matcher(functions)
    for label, candidates in functions.items():
        for function in candidates:
            code = function.__code__
            name = '{}({}): {}'.format(os.path.basename(code.co_filename), code.co_firstlineno, code.co_name)
            assert stage_of(name) == label, name
    assert stage_of('aten::add') is None and stage_of(bench.FRAME_RANGE) is None
