"""Speed of the training harness against the bare step it wraps, on one device, in one process.

    python scripts/bench_harness.py --device cuda --model cifar_resnet20 --shape 1,28,28 [--json OUT]

On `synthetic-lt` data with the sizes of the benchmark the shape belongs to (1x28x28: the
Fashion-MNIST-LT / K49-LT Zipf sizes, 7,437 images; 3x32x32: CIFAR-10-LT's 12,406), measures:

1. bare eager step: forward, cross-entropy, backward and the harness's optimizer on batches
   already on the device (no gathers, no hooks): the eager limit;
2. bare graph step (CUDA): the same step captured in one CUDA graph: the launch-free limit;
3. harness epochs: `tailbench.benchmarks.trainer.train` with `ce` (index gathers, uint8 to
   float, method hooks, lr schedule, captured steps where the runtime chooses them), the first
   epoch (warm-up, capture) excluded;
4. the ratios harness / bare eager (the CPU check: >= 0.9) and harness / bare graph (the GPU
   target: >= 0.85);
5. evaluation: milliseconds per 1,000 test images at several batch sizes, NCHW and channels_last;
6. the bare eager step in the other memory layout, and (CUDA) the harness with determinism off
   (cuDNN autotuning on): what determinism and the layout choice cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench_common import run_script

SIZES = {  # the benchmark whose sizes a shape gets
    (1, 28, 28): {"channels": "1", "size": "28", "profile": "zipf", "n_max": "4800", "alpha": "2.0", "n_min": "5"},
    (3, 32, 32): {"channels": "3", "size": "32", "profile": "exp", "n_max": "5000", "ratio": "100"},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="cifar_resnet20")
    p.add_argument("--shape", default="1,28,28", help="C,H,W of the synthetic images (1,28,28 or 3,32,32)")
    p.add_argument("--recipe", default=None, help="recipe for batch size and optimizer (default: fmnist for 1 channel, cifar-lt for 3)")
    p.add_argument("--steps", type=int, help="timed bare steps (default 300 on CUDA, 30 on the CPU)")
    p.add_argument("--epochs", type=int, help="harness epochs, the first one not timed (default 6 on CUDA, 2 on the CPU)")
    p.add_argument("--dataset-opt", action="append", default=[], metavar="KEY=VALUE", help="override a synthetic-lt option (e.g. n_max=100 for a quick try)")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)

    import torch

    from tailbench.benchmarks.runtime import make_deterministic
    from tailbench.devices import device_name, resolve_device

    device = resolve_device(args.device)
    make_deterministic(device)
    shape = tuple(int(s) for s in args.shape.split(","))
    if shape not in SIZES:
        print(f"bench_harness.py: error: --shape must be one of {', '.join(','.join(map(str, s)) for s in SIZES)}", file=sys.stderr)
        return 2
    cuda = device.type == "cuda"
    steps = args.steps or (300 if cuda else 30)
    epochs = args.epochs or (6 if cuda else 2)
    if epochs < 2:
        p.error(f"--epochs {epochs}: the first epoch is not timed, so at least 2 are needed")
    recipe_name = args.recipe or ("fmnist" if shape[0] == 1 else "cifar-lt")
    figures: dict[str, object] = {"device": device_name(device), "model": args.model, "shape": list(shape), "recipe": recipe_name, "torch": torch.__version__}
    print(f"{args.model} on {args.shape} synthetic data, {device_name(device)}, torch {torch.__version__}")

    from tailbench.options import parse_assignments

    bench = Bench(device, args.model, shape, recipe_name, epochs, parse_assignments("--dataset-opt", args.dataset_opt))
    figures["bare_eager_img_s"] = bench.bare_eager(steps)
    if cuda:
        figures["bare_graph_img_s"] = bench.bare_graph(steps)
    figures["harness_img_s"], figures["harness_train_step"] = bench.harness()
    figures["harness_over_bare_eager"] = figures["harness_img_s"] / figures["bare_eager_img_s"]
    line = f"harness / bare eager = {figures['harness_over_bare_eager']:.2f}"
    if cuda:
        figures["harness_over_bare_graph"] = figures["harness_img_s"] / figures["bare_graph_img_s"]
        line += f"; harness / bare graph = {figures['harness_over_bare_graph']:.2f}"
    print(line)
    figures["eval_ms_per_1000"] = bench.evaluation([256, 1024, 4096] if cuda else [128, 256, 1024])
    other = "contiguous" if bench.runtime.memory_format == "channels_last" else "channels_last"
    figures[f"bare_eager_img_s_{other}"] = bench.bare_eager(steps, memory_format=other)
    if cuda:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
        figures["harness_img_s_nondeterministic"], _ = bench.harness()
        figures["determinism_cost"] = figures["harness_img_s_nondeterministic"] / figures["harness_img_s"]
        print(f"nondeterministic (cuDNN autotuning) / deterministic harness = {figures['determinism_cost']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


class Bench:
    def __init__(self, device, model_name: str, shape: tuple[int, int, int], recipe_name: str, epochs: int, options: dict[str, str]) -> None:
        import torch

        from tailbench.recipes.recipe import load_recipe
        from tailbench.benchmarks.runner import place_model
        from tailbench.datasets import get_dataset
        from tailbench.methods import ComposedMethod, MethodContext

        self.device, self.shape = device, shape
        self.data = get_dataset("synthetic-lt", {**SIZES[shape], **options}).load(Path(".")).to(device)
        base = load_recipe(recipe_name)
        # A constant lr: the schedule's shape does not change the speed, and no epoch is a warm-up.
        self.recipe = replace(base, model=model_name, epochs=epochs, warmup_epochs=0, milestones=(), factors=())
        ctx = MethodContext(
            num_classes=self.data.num_classes, class_counts=self.data.train_counts, epochs=epochs, first_lr_step=epochs,
            device=device, seed=0, image_shape=self.data.image_shape, nuisance=None,
        )
        self.new_method = lambda: ComposedMethod("ce", ctx)
        self.place = lambda method: place_model(self.recipe, self.data, method, device)
        _, self.runtime = self.place(self.new_method())
        self.torch = torch

    def _batches(self, count: int, runtime):
        torch = self.torch
        g = torch.Generator(device=self.device).manual_seed(0)
        n, b = len(self.data.train), self.recipe.batch_size
        idx = torch.randint(0, n, (count, b), generator=g, device=self.device)
        x = self.data.train.x[idx.flatten()].float().div_(255.0).view(count, b, *self.shape)
        return [runtime.layout(x[i]) for i in range(count)], [self.data.train.y[idx[i]] for i in range(count)]

    def bare_eager(self, steps: int, memory_format: str | None = None) -> float:
        import torch.nn.functional as F

        from tailbench.benchmarks.trainer import build_optimizer

        method = self.new_method()
        model, runtime = self.place(method)
        if memory_format is not None:
            runtime = replace(runtime, memory_format=memory_format)
            model = model.to(memory_format=runtime.torch_format)
        optimizer = build_optimizer(model, method, self.recipe, self.device)
        xs, ys = self._batches(8, runtime)
        model.train()

        def step(i: int) -> None:
            loss = F.cross_entropy(model(xs[i % 8]), ys[i % 8])
            optimizer.zero_grad(set_to_none=self.device.type == "cpu")
            loss.backward()
            optimizer.step()

        rate = self._time(step, steps)
        print(f"bare eager step ({runtime.memory_format}): {rate:,.0f} img/s ({1000 * self.recipe.batch_size / rate:.2f} ms/step)")
        return rate

    def bare_graph(self, steps: int) -> float:
        torch = self.torch
        import torch.nn.functional as F

        from tailbench.benchmarks.trainer import build_optimizer

        method = self.new_method()
        model, runtime = self.place(method)
        optimizer = build_optimizer(model, method, self.recipe, self.device)
        xs, ys = self._batches(8, runtime)
        static_x, static_y = xs[0].clone(), ys[0].clone()
        model.train()

        def body() -> None:
            loss = F.cross_entropy(model(static_x), static_y)
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            optimizer.step()

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()

        def step(i: int) -> None:
            static_x.copy_(xs[i % 8])
            static_y.copy_(ys[i % 8])
            graph.replay()

        rate = self._time(step, steps)
        print(f"bare graph step: {rate:,.0f} img/s ({1000 * self.recipe.batch_size / rate:.2f} ms/step)")
        return rate

    def harness(self) -> tuple[float, str]:
        torch = self.torch

        from tailbench.benchmarks.trainer import train

        method = self.new_method()
        model, runtime = self.place(method)
        generator = torch.Generator(device=self.device).manual_seed(0)
        history, kind = train(model, method, self.data.train, self.recipe, generator, runtime, quiet=True)
        timed = history[1:]
        rate = sum(len(self.data.train) for _ in timed) / sum(h.seconds for h in timed)
        print(f"harness epochs ({kind}): {rate:,.0f} img/s ({len(self.data.train)} images an epoch, {len(timed)} epochs timed)")
        return rate, kind

    def evaluation(self, sizes: list[int]) -> dict[str, float]:
        from tailbench.benchmarks.evaluation import predict_log_probs

        out = {}
        method = self.new_method()
        for fmt in ("contiguous", "channels_last"):
            model, runtime = self.place(method)
            model = model.to(memory_format=replace(runtime, memory_format=fmt).torch_format)
            for size in sizes:
                rt = replace(runtime, memory_format=fmt, eval_batch_size=size)
                images = self.data.test.x
                predict_log_probs(method, model, images[: 2 * size], rt)  # warm-up
                self._sync()
                started = time.perf_counter()
                predict_log_probs(method, model, images, rt)
                self._sync()
                ms = 1000 * (time.perf_counter() - started) / (images.shape[0] / 1000)
                out[f"{fmt}@{size}"] = ms
                print(f"evaluation {fmt:13s} batch {size:5d}: {ms:7.1f} ms per 1,000 images")
        return out

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def _time(self, step, steps: int) -> float:
        for i in range(min(10, steps)):
            step(i)
        self._sync()
        started = time.perf_counter()
        for i in range(steps):
            step(i)
        self._sync()
        return steps * self.recipe.batch_size / (time.perf_counter() - started)


if __name__ == "__main__":
    run_script(main, __file__)
