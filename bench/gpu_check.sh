#!/usr/bin/env bash
# The plugin's GPU check: run it on any machine with a GPU after ./install.sh, and record its output in docs/benchmarks.md
# (Training, "GPU check") with the date and the GPU. It takes about ten minutes (each part is capped) and prints:
#   1. PrRoIPool on CUDA against an exact reference (the quadrature of tests/test_prroi_pool.py, float64) and
#      against the same op in float64 on the CPU (forward and both gradients): what backend 'auto' runs, and the
#      Triton kernel in float32 and float64 with host syncs turned into errors; then the time of the pure-PyTorch
#      op and of the Triton kernel against torchvision.ops.roi_align, forward + backward, at DiMP's shapes
#      (bench/prroi_pool.py; the Triton kernel fails the part beyond 2 x roi_align's time);
#   2. the suite's CUDA tests (pytest -m cuda: the Triton kernels on the GPU, the pure-PyTorch op on CUDA, pinned
#      batches, a training step's host syncs from the profiler against the budget of tests/test_host_syncs.py);
#   3. the real training loop (bench/train_loop.py): the recipe's loaders with workers and pinned batches, MKDNet's
#      trainer with its non-blocking copies, fp16 with the gradient scaler, a checkpoint per epoch and a run resumed
#      from it; seconds and host syncs (profiler) per iteration; fails above the sync budget or if the resume fails;
#   4. one MKDNet and one Super-DiMP training step (batch 20, 352-px crops) in float32, bf16 and fp16: the
#      MKDNet / Super-DiMP ratio (fails above 1.45), each mixed / float32 ratio and the peak memory
#      (bench/train_step.py);
#   5. the IoU-net refinement in a window against the stock one on the whole map (bench/iou_refinement.py): which is
#      faster on the GPU decides the tracker's GPU default (iou_window_margin); fails when the default is the
#      slower by more than 5 %;
#   6. MKDNet and Super-DiMP tracking FPS on a synthetic sequence (bench/tracking_fps.py; fails below 0.95);
#   7. with two GPUs or more: DDP training throughput against the number of GPUs (bench/ddp_scaling.py).
#
#   bash bench/gpu_check.sh                 # on the GPU
#   bash bench/gpu_check.sh --device cpu    # dry run of every part with tiny sizes on the CPU (checks the script;
#                                           # the Triton kernel runs in Triton's interpreter, host syncs are counted
#                                           # on a simulated GPU, ltr_plugins/host_syncs.py)
#
# Exit status: 0 when every part passed, 1 when one failed or missed its target (the others still run), 2 without a
# usable CUDA device.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DEVICE=cuda
if [ "${1:-}" = "--device" ]; then DEVICE="${2:-}"; fi
case "$DEVICE" in cuda|cpu) ;; *) echo "usage: bash bench/gpu_check.sh [--device cuda|cpu]" >&2; exit 2 ;; esac
if [ ! -x "$PY" ]; then echo "no $PY: run ./install.sh first" >&2; exit 2; fi

if [ "$DEVICE" = cuda ]; then
    if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "No CUDA device is visible to PyTorch ($("$PY" -c 'import torch; print(torch.__version__)')):" \
             "nothing to check. 'bash bench/gpu_check.sh --device cpu' dry-runs the script on the CPU." >&2
        exit 2
    fi
    GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
else
    GPUS=0
fi

echo "== GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), device: $DEVICE"
if [ "$DEVICE" = cuda ] && command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "CUDA", torch.version.cuda,
"cuDNN", torch.backends.cudnn.version() if torch.cuda.is_available() else None, "torchvision", torchvision.__version__)
if torch.cuda.is_available(): print(torch.cuda.get_device_name(0))'

STATUS=0
part() {  # part TITLE SECONDS COMMAND...: runs one part with a time cap; a failure is reported, the rest goes on
    local title=$1 seconds=$(( $2 * CAP_FACTOR ))
    shift 2
    echo
    echo "== $title"
    local start=$SECONDS
    timeout --kill-after=10 "$seconds" "$@"
    local code=$?
    if [ $code -ne 0 ]; then
        echo "FAILED: $title (exit status $code$([ $code -eq 124 ] && echo ", over its ${seconds} s cap"))"
        STATUS=1
    fi
    echo "   ($((SECONDS - start)) s)"
}

CAP_FACTOR=1      # on the CPU (a dry run) the caps only end a hang
[ "$DEVICE" = cpu ] && CAP_FACTOR=5
if [ "$DEVICE" = cuda ]; then
    ROIS=1536; CHANNELS=256; BATCHES="8 20"; REPEATS=7; TRAIN_ARGS=(--steps 3 --warmup 1 --max-ratio 1.45)
    FPS_ARGS=(--frames 60 --repeats 2 --breakdown-runs 1 --min-ratio 0.95)
    TRITON_ENV=; TRITON_BENCH_ARGS=(--batch-sizes 8 20 --repeats 7 --warmup 1 --max-ratio 2)
    LOOP_ARGS=(--iterations 8); REFINE_ARGS=(--repeats 30 --warmup 3)
else   # the Triton kernel runs in Triton's interpreter, on few RoIs and channels
    ROIS=12; CHANNELS=16; BATCHES="2"; REPEATS=1; TRAIN_ARGS=(--steps 1 --warmup 0 --batch-size 2 --feature-sz 8)
    FPS_ARGS=(--frames 4 --warmup-frames 2 --repeats 1 --breakdown-runs 1)
    TRITON_ENV=TRITON_INTERPRET=1; TRITON_BENCH_ARGS=(--batch-sizes 2 --rois 4 --channels 16 --repeats 1 --warmup 0)
    LOOP_ARGS=(--iterations 1); REFINE_ARGS=(--repeats 4 --warmup 1)
fi

part "1a. PrRoIPool on $DEVICE: exact against the quadrature reference and float64, no host syncs" 120 \
    env $TRITON_ENV "$PY" - "$DEVICE" "$ROIS" "$CHANNELS" <<'EOF'
import sys
import torch
sys.path.insert(0, 'tests')
from test_prroi_pool import reference_prroi          # the definition, integrated directly (float64, CPU)
from ltr_plugins.prroi_pool import prroi_pool2d
from ltr_plugins.prroi_pool_backends import IMPLEMENTATIONS, PoolScope

device, num_rois, channels = torch.device(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
# what backend 'auto' runs, then the Triton kernel itself in both dtypes (on the CPU: in Triton's interpreter)
RUNS = (('auto', torch.float32, 1e-4), ('triton', torch.float32, 1e-4), ('triton', torch.float64, 1e-10))
generator = torch.Generator().manual_seed(0)
failed = []
for name, size, pooled, scale in (('layer2', 44, 5, 1 / 8), ('layer3', 22, 3, 1 / 16)):
    maps = 4
    features = torch.randn(maps, channels, size, size, generator=generator, dtype=torch.float64)
    xy = torch.rand(num_rois, 2, generator=generator, dtype=torch.float64) * 300
    wh = torch.rand(num_rois, 2, generator=generator, dtype=torch.float64) * 190 + 10
    rois = torch.cat([torch.arange(num_rois, dtype=torch.float64)[:, None] % maps, xy, xy + wh], dim=1)

    def run(dev, dtype, backend, scope=None, no_sync=False):
        f = features.to(dev, dtype).clone().requires_grad_(True)
        r = rois.to(dev, dtype).clone().requires_grad_(True)
        if no_sync:   # a host read or blocking copy inside the pool raises
            torch.cuda.set_sync_debug_mode('error')
        out = prroi_pool2d(f, r, pooled, pooled, scale, backend=backend, scope=scope)
        weights = torch.linspace(-1, 1, out.numel(), dtype=dtype, device=dev).reshape(out.shape)
        (out * weights).sum().backward()
        if no_sync:
            torch.cuda.set_sync_debug_mode(0)
        return [t.detach().double().cpu() for t in (out, f.grad, r.grad[:, 1:])]

    cpu64 = run(torch.device('cpu'), torch.float64, 'torch')
    subset = slice(0, min(num_rois, 48))
    reference = reference_prroi(features, rois[subset], pooled, pooled, scale)
    scale_ref = reference.abs().max().item()
    exact = (cpu64[0][subset] - reference).abs().max().item() / scale_ref
    print('{}: {} RoIs on {} maps {}x{}x{}, pooled {}x{}; float64 pure-PyTorch op on the CPU vs the quadrature: '
          '{:.2e}'.format(name, num_rois, maps, channels, size, size, pooled, pooled, exact))
    for backend, dtype, tolerance in RUNS:
        scope = PoolScope()
        no_sync = backend == 'triton' and device.type == 'cuda'
        outputs = run(device, dtype, backend, scope, no_sync)
        vs_exact = (outputs[0][subset] - reference).abs().max().item() / scale_ref
        diffs = [((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item() for a, b in zip(outputs, cpu64)]
        print('  backend {!r}, {}: ran {}{}'.format(backend, str(dtype)[6:], IMPLEMENTATIONS[scope.used],
                                                    ', no host sync' if no_sync else ''))
        print('    max error / max value: vs the quadrature {:.2e}; vs float64 CPU: output {:.2e}, feature grad '
              '{:.2e}, box grad {:.2e}'.format(vs_exact, *diffs))
        if max(vs_exact, *diffs) > tolerance:
            failed.append('{} {} {}'.format(name, backend, dtype))
if failed:
    sys.exit('PrRoIPool on {} disagrees with the exact values: {}'.format(device.type, ', '.join(failed)))
EOF

part "1b. PrRoIPool (pure PyTorch) vs torchvision roi_align, forward + backward (bench/prroi_pool.py)" 120 \
    "$PY" bench/prroi_pool.py --device "$DEVICE" --batch-sizes $BATCHES --repeats "$REPEATS" --warmup 1

part "1c. PrRoIPool (Triton kernel) vs torchvision roi_align, forward + backward (bench/prroi_pool.py)" 120 \
    env $TRITON_ENV "$PY" bench/prroi_pool.py --device "$DEVICE" --backend triton "${TRITON_BENCH_ARGS[@]}"

part "2. the suite's CUDA tests (pytest -m cuda)" 300 \
    "$PY" -m pytest -q -m cuda -p no:cacheprovider tests

part "3. the real training loop: loader, copies, fp16 scaler, checkpoint, resume (bench/train_loop.py)" 300 \
    "$PY" bench/train_loop.py --device "$DEVICE" "${LOOP_ARGS[@]}"

part "4a. training step, float32 and bf16 (bench/train_step.py)" 120 \
    "$PY" bench/train_step.py --device "$DEVICE" "${TRAIN_ARGS[@]}" --mixed-precision bf16
part "4b. training step, float32 and fp16 with gradient scaling (bench/train_step.py)" 120 \
    "$PY" bench/train_step.py --device "$DEVICE" "${TRAIN_ARGS[@]}" --mixed-precision fp16

part "5. IoU refinement in a window against the whole map: the tracker's default (bench/iou_refinement.py)" 120 \
    "$PY" bench/iou_refinement.py --device "$DEVICE" "${REFINE_ARGS[@]}"

part "6. tracking FPS, MKDNet and Super-DiMP (bench/tracking_fps.py)" 150 \
    "$PY" bench/tracking_fps.py --device "$DEVICE" "${FPS_ARGS[@]}"

if [ "$GPUS" -ge 2 ]; then
    part "7. DDP training throughput on $GPUS GPUs (bench/ddp_scaling.py)" 120 \
        "$PY" bench/ddp_scaling.py --device cuda --feature-sz 22 --batch-per-process 8 --steps 3
else
    echo
    echo "== 7. DDP scaling: skipped (needs two GPUs or more; $GPUS visible)"
fi

echo
[ $STATUS -eq 0 ] && echo "GPU check: every part passed." || echo "GPU check: some parts FAILED (see above)."
exit $STATUS
