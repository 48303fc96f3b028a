"""Benchmark: batched residual extraction vs one prompt at a time vs ``run_with_cache``, side by side.

Prints, for the same prompts and threads in one run: wall time of each, the speed ratios, the max abs
difference between the three results, peak RSS growth, and RSS over repeated extractions (a long sweep
must not grow memory).

    python -m experiments.bench_extraction [--n 64] [--layers 0 8 16 24] [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from experiments import cli
from lens_bias.activations import extract
from lens_bias.data import contrast_split
from lens_bias.models import EMBEDDED_MODEL, load_model
from lens_bias.prompts import continuation_batch


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_MODEL)
    parser.add_argument("--n", type=int, default=64, help="prompts")
    parser.add_argument("--layers", type=int, nargs="+", default=[0, 8, 16, 24])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    pairs = contrast_split("gender", n_train=args.n, seed=0).train
    batch = continuation_batch(model.tokenizer, [p.prompt for p in pairs], [p.positive for p in pairs])
    extract(model, batch[0:2], args.layers)  # warm-up

    start = time.perf_counter()
    batched = extract(model, batch, args.layers, batch_size=args.batch_size)
    t_batched = time.perf_counter() - start

    start = time.perf_counter()
    single = torch.cat([extract(model, batch[i:i + 1], args.layers) for i in range(len(batch))])
    t_single = time.perf_counter() - start

    names = [f"blocks.{layer}.hook_resid_post" for layer in args.layers]
    start = time.perf_counter()
    rows = []
    for i in range(len(batch)):
        with torch.inference_mode():
            _, cache = model.run_with_cache(batch.tokens[i:i + 1, : batch.lengths[i]])
        rows.append(torch.stack([cache[name][0, -1] for name in names]))
        del cache
    cached = torch.stack(rows)
    t_cache = time.perf_counter() - start

    print(f"{len(batch)} prompts, layers {args.layers}, {torch.get_num_threads()} threads")
    print(f"batched extract (batch {args.batch_size}): {t_batched:7.2f} s")
    print(f"one prompt at a time:            {t_single:7.2f} s  ratio {t_single / t_batched:5.1f}x")
    print(f"run_with_cache, all hooks:       {t_cache:7.2f} s  ratio {t_cache / t_batched:5.1f}x")
    print(f"max |batched - single| = {(batched - single).abs().max():.2e}, "
          f"max |batched - run_with_cache| = {(batched - cached).abs().max():.2e}")
    readings = []
    for _ in range(args.repeats):
        extract(model, batch, args.layers, batch_size=args.batch_size)
        readings.append(rss_mb())
    print("RSS (MB) after each repeated extraction:", " ".join(f"{r:.0f}" for r in readings),
          f"| growth first->last {readings[-1] - readings[0]:+.0f} MB")
    print(f"result size: {batched.numel() * batched.element_size() / 2**20:.2f} MB "
          f"([{len(batch)}, {len(args.layers)}, {model.cfg.d_model}])")


if __name__ == "__main__":
    cli.run(main)
