"""Are the label-mixing parts (mixup, cutmix, remix) capture-safe on CUDA? They say so
(`capture_safe = True`); this checks it on a real GPU.

    python scripts/check_capture_mixing.py [--batch 256] [--steps 20]

Per part (and for alpha != 1, which draws Beta through gamma variates): the `augment` hook and the
spec's loss, with a backward pass through a small linear model, are captured in one CUDA graph
with the step's generator registered to it; the graph is replayed `--steps` times and each replay
is compared with the same step run eagerly from a generator in the same state. Capture fails on
any host sync; equal results mean the randomness comes only from the generator and advances per
replay as it does eagerly. Also prints the time of an eager step and of a replay.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)

    import torch

    from tailbench.methods import Batch, ComposedMethod, MethodContext, StepState

    if not torch.cuda.is_available():
        print("check_capture_mixing: needs a CUDA device", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    counts = torch.tensor([4800, 2000, 900, 400, 180, 80, 35, 15, 8, 5], device=device)
    ctx = MethodContext(10, counts, 10, 6, device, 0, (1, 28, 28), None)
    cases = [("ce+mixup", {}), ("ce+cutmix", {"cutmix.prob": "0.5"}), ("ce+drw+remix", {}), ("ce+mixup", {"mixup.alpha": "0.4"})]
    failures = 0
    for spec, hp in cases:
        method = ComposedMethod(spec, ctx, hp)
        weights = method.loss_weights(9)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10)).to(device)
        source = torch.Generator(device=device).manual_seed(1)
        x = torch.rand(args.batch, 1, 28, 28, device=device, generator=source)
        y = torch.randint(0, 10, (args.batch,), device=device, generator=source)
        idx = torch.arange(args.batch, device=device)

        def step(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            batch = method.augment(Batch(x, y, idx), StepState(9, 0, generator))
            loss = method.loss(model, model(batch.x), batch.y, weights, 9)
            grad, = torch.autograd.grad(loss, model[1].weight)
            return batch.x, batch.y, grad

        graph_generator = torch.Generator(device=device).manual_seed(7)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up outside the graph, as capture requires
            step(torch.Generator(device=device).manual_seed(0))
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(graph_generator)
        label = f"{spec} {hp or ''}".strip()
        try:
            with torch.cuda.graph(graph):
                outputs = step(graph_generator)
        except Exception as error:  # noqa: BLE001  (any capture failure is the finding)
            print(f"{label}: capture FAILED ({type(error).__name__}: {' '.join(str(error).split())[:200]})")
            failures += 1
            continue
        eager_generator = torch.Generator(device=device).manual_seed(7)
        same, previous = True, None
        for _ in range(args.steps):
            graph.replay()
            expected = step(eager_generator)
            same &= all(torch.allclose(a, b, atol=1e-6) for a, b in zip(outputs, expected))
            changed = previous is None or not torch.equal(previous, outputs[0])
            previous = outputs[0].clone()
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(args.steps):
            step(eager_generator)
        torch.cuda.synchronize()
        eager_ms = (time.perf_counter() - started) * 1e3 / args.steps
        started = time.perf_counter()
        for _ in range(args.steps):
            graph.replay()
        torch.cuda.synchronize()
        replay_ms = (time.perf_counter() - started) * 1e3 / args.steps
        ok = same and changed
        failures += not ok
        print(f"{label}: captured; {args.steps} replays {'match' if same else 'DIFFER FROM'} eager steps; draws "
              f"{'advance' if changed else 'DO NOT advance'} per replay; eager {eager_ms:.3f} ms, replay {replay_ms:.3f} ms per step")
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}: {len(cases) - failures} of {len(cases)} capture-safe")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
