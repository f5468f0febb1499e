"""What MSR's learned sharing U_s does to the stem's 3x3 kernels, against the ordinary layer (U_s = I).

    python scripts/check_msr_kernels.py fmnist-rot-lt fmnist-bg-lt fmnist-dil-lt [--filters 4096]

For each dataset, the meta-trained U_s in the cache ($TAILBENCH_CACHE/msr/DATASET/*/sharing.pt)
maps random filter parameters v ~ N(0, I) to `copies` kernels each (W = U_s v). Printed, for the
learned U_s and for U_s = I:
- rot90 cosine: the cosine between copy g + 1 and copy g turned by 90 degrees (1 when every copy
  is a quarter-turn of the one before: the sharing of the rotation group C4);
- isotropic share: the share of a kernel's energy in the rotation-invariant pattern (centre,
  edges, corners), which answers alike at any multiple of 90 degrees (1/3 for random kernels);
- |sum| / (3 ||k||): how far a kernel is from zero-sum (0: it ignores a constant background;
  1: a constant kernel);
- rank: singular values of U_s above a tenth of the largest.
"""

from __future__ import annotations

import argparse
import sys

from bench_common import run_script


def kernel_figures(kernels):
    """kernels [N, copies, 3, 3] -> the three kernel figures above, each a mean over N."""
    import torch

    k = kernels.shape[-1]
    turned = torch.rot90(kernels, 1, dims=(-2, -1))
    following = kernels.roll(-1, dims=1)
    rot90 = torch.nn.functional.cosine_similarity(following.flatten(2), turned.flatten(2), dim=2).mean()
    centre = torch.zeros(k, k)
    centre[k // 2, k // 2] = 1.0
    edges, corners = torch.zeros(k, k), torch.zeros(k, k)
    edges[0, 1] = edges[1, 0] = edges[1, 2] = edges[2, 1] = 0.5
    corners[0, 0] = corners[0, 2] = corners[2, 0] = corners[2, 2] = 0.5
    basis = torch.stack([centre, edges, corners]).flatten(1)  # orthonormal
    flat = kernels.flatten(2)
    energy = flat.pow(2).sum(2)
    isotropic = ((flat @ basis.T).pow(2).sum(2) / energy).mean()
    zero_sum = (flat.sum(2).abs() / (k * flat.norm(dim=2))).mean()
    return float(rot90), float(isotropic), float(zero_sum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", metavar="DATASET")
    p.add_argument("--filters", type=int, default=4096, help="random v drawn (default 4096)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from tailbench.asset_cache import cache_root
    from tailbench.msr.cache import SHARING

    paths = {}
    for dataset in args.datasets:
        folder = cache_root() / SHARING.folder / dataset
        found = sorted(folder.glob(f"*/{SHARING.final}"))
        if not found:
            print(f"check_msr_kernels.py: error: no meta-trained sharing of {dataset} in {folder}; run `tailbench run --dataset {dataset} "
                  "--method ce+drs+msr` first", file=sys.stderr)
            return 2
        if len(found) > 1:
            print(f"check_msr_kernels.py: error: {len(found)} meta-trained sharings of {dataset} in {folder} (other configs or seeds); "
                  "move all but the one to inspect elsewhere", file=sys.stderr)
            return 2
        paths[dataset] = found[0]
    print(f"{'':32s} {'rot90 cosine':>13s} {'isotropic share':>16s} {'|sum|/(3||k||)':>15s} {'rank':>5s}")
    for dataset, path in paths.items():
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = payload["identity"]["config"]
        copies, k = config["copies"], config["kernel"]
        if k != 3:
            print(f"check_msr_kernels.py: error: {path} has {k}x{k} kernels; the figures here are defined for 3x3 only", file=sys.stderr)
            return 2
        learned = payload["sharing"].float()
        generator = torch.Generator().manual_seed(args.seed)
        v = torch.randn(args.filters, copies * k * k, generator=generator)
        for name, sharing in (("learned", learned), ("ordinary", torch.eye(len(learned)))):
            figures = kernel_figures((v @ sharing.T).view(args.filters, copies, k, k))
            values = torch.linalg.svdvals(sharing)
            rank = int((values > 0.1 * values.max()).sum())
            print(f"{dataset + ', ' + name:32s} {figures[0]:13.3f} {figures[1]:16.3f} {figures[2]:15.3f} {rank:5d}")
    return 0


if __name__ == "__main__":
    run_script(main, __file__)
