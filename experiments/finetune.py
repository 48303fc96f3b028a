"""Debiasing by LoRA instruction fine-tuning (SR_LLM's recipe): train (or reuse) a merged fine-tune, then compare the
rewrites of held-out biased texts before and after.

The pairs (``--data``: a CSV in SR_LLM's format; default the project's 347 pairs) are split by claim
(:func:`lens_bias.debias.rewrites.split_rewrites`, ``--held-out`` of the claims held out); the model is fine-tuned on
the train side (:func:`lens_bias.debias.lora.finetune_lora`: SR_LLM's settings, one epoch, or ``--max-steps``)
and saved as a merged model folder ``{--out}/model`` that ``load_model`` reads (and that a later run with the same
settings reuses). Both the base and the fine-tuned model then rewrite the held-out biased texts (greedy, the
training chat template), scored for content retention, stereotype words kept and verbatim copies, each with a 95%
bootstrap interval, next to the same scores of the data's own rewrites; per rewrite in ``finetune.items.parquet`` /
``.csv`` (:func:`lens_bias.debias.lora.rewrite_items`).

    python -m experiments.finetune [--model NAME] [--data pairs.csv] [--max-steps 20] [--quick]
    python -m experiments.finetune --replot figures/finetune/finetune.json
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments import cli

if TYPE_CHECKING:
    from lens_bias.debias.lora import RewriteEval
    from lens_bias.provenance import Result

#: Smoke-run defaults: a few steps, a few held-out texts, short rewrites.
QUICK = {"max_steps": 4, "n_eval": 8, "max_new_tokens": 24}
N_EXAMPLES = 6


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """The training data, its split, the training length and the rewrites evaluated."""

    data: Path | None = field(default=None, metadata={"help": "rewrite CSV in SR_LLM's format (default: ours)"})
    held_out: float = field(default=0.3, metadata={"help": "share of claims (CSV targets) held out for evaluation"})
    max_steps: int | None = field(default=None, metadata={"help": "optimiser steps (default: one epoch)", "min": 1})
    n_eval: int | None = field(default=None, metadata={"help": "held-out texts rewritten (default: all)", "min": 2})
    max_new_tokens: int = field(default=48, metadata={"help": "tokens per rewrite", "min": 1})
    batch_size: int = field(default=16, metadata={"help": "prompts per generation batch", "min": 1})
    out: Path = Path("figures/finetune")


def _timed_eval(model: Any, config: Config, pairs: list[Any], template: Any) -> tuple[RewriteEval, float, dict]:
    """The rewrite scores of one loaded model, the seconds they took, and the model's record."""
    from lens_bias.debias.lora import rewrite_eval  # the library is imported here, not at the top: --help speed
    from lens_bias.models import model_record

    started = time.perf_counter()
    sizes: dict[str, Any] = {"max_new_tokens": config.max_new_tokens, "batch_size": config.batch_size}
    scores = rewrite_eval(model, pairs, template=template, seed=config.seed, progress=True, **sizes)
    return scores, time.perf_counter() - started, model_record(model).to_dict()


def run(config: Config) -> Path:
    """Fine-tune (or reuse), rewrite the held-out texts with both models, save the result."""
    from lens_bias.data.records import fingerprint  # the library is imported here, not at the top: --help speed
    from lens_bias.data.sampling import sample
    from lens_bias.debias.lora import LoraRecipe, check_rewrite_eval, debias_template, finetune_lora, rewrite_items
    from lens_bias.debias.rewrites import load_rewrite_pairs, split_rewrites
    from lens_bias.models import load_model
    from lens_bias.provenance import Result, collect_provenance, set_seed

    set_seed(config.seed)
    pairs = load_rewrite_pairs(config.data)
    train, held = split_rewrites(pairs, config.held_out, config.seed)
    evaluated = sample(held, config.n_eval, config.seed, key=lambda pair: pair.id)
    recipe = LoraRecipe(seed=config.seed)
    base = load_model(config.model, device=config.device, dtype=config.dtype)  # checked, scored before training
    template = debias_template(base, recipe)
    check_rewrite_eval(base, evaluated, template=template, max_new_tokens=config.max_new_tokens)
    before, before_s, base_record = _timed_eval(base, config, evaluated, template)
    del base
    tuned = finetune_lora(config.model, train, recipe, config.out / "model", max_steps=config.max_steps)
    print(f"fine-tune: {'reused' if tuned.reused else 'trained'} {tuned.folder} ({tuned.steps} steps)")
    tuned_model = load_model(tuned.folder, device=config.device, dtype=config.dtype)
    after, after_s, _ = _timed_eval(tuned_model, config, evaluated, tuned.template)
    examples = [
        {"biased": pair.biased_text, "reference": pair.debiased_text, "before": b, "after": a}
        for pair, b, a in zip(evaluated[:N_EXAMPLES], before.rewrites, after.rewrites)
    ]
    result = Result(
        name="finetune",
        values={
            "finetune": tuned.to_dict(),
            "before": before.to_dict(),
            "after": after.to_dict(),
            "n_pairs": {"all": len(pairs), "train": len(train), "held_out": len(held), "evaluated": len(evaluated)},
            "eval_s": {"before": before_s, "after": after_s},
            "examples": examples,
        },
        config={**config.to_dict(), "recipe": recipe.to_dict()},
        provenance=collect_provenance(
            model_record=base_record,
            data={"rewrite_pairs": fingerprint(pairs), "train": tuned.data, "evaluated": fingerprint(evaluated)},
            seed=config.seed,
        ),
        items=rewrite_items(evaluated, {"before": before, "after": after}),
    )
    return result.save(config.out / "finetune")


def _cell(estimate: dict[str, Any] | None) -> str:
    from lens_bias.stats import Estimate  # the library is imported here, not at the top: --help speed

    return "n/a" if estimate is None else str(Estimate.from_dict(estimate))


def summarize(result: Result) -> str:
    """The run in a few lines: training, then each rewrite score before / after / in the data's rewrites."""
    values = result.values
    tuned, before, after = values["finetune"], values["before"], values["after"]
    losses = tuned["losses"]
    lines = [
        f"LoRA fine-tune ({'reused' if tuned['reused'] else 'trained'}): {tuned['steps']} steps on "
        f"{values['n_pairs']['train']} pairs, loss {losses[0]:.3f} -> {losses[-1]:.3f}, {tuned['wall_s']:.0f} s "
        f"({tuned['details']['step_s']:.2f} s/step); model {tuned['folder']}",
        f"rewrites of {values['n_pairs']['evaluated']} held-out biased texts "
        f"({values['eval_s']['before']:.0f} s before, {values['eval_s']['after']:.0f} s after):",
        f"{'measure':<20} {'before':<28} {'after':<28} {'data rewrites':<28}",
    ]
    rows = [
        ("content retention", "retention", "reference_retention"),
        ("stereotype kept", "stereotype", "reference_stereotype"),
        ("copied verbatim", "unchanged", None),
    ]
    for label, key, reference in rows:
        ref = _cell(before[reference]) if reference else "-"
        lines.append(f"{label:<20} {_cell(before[key]):<28} {_cell(after[key]):<28} {ref:<28}")
    for example in values["examples"][:3]:
        lines.append(f"  {example['biased']!r}\n    before: {example['before']!r}\n    after:  {example['after']!r}")
    return "\n".join(lines)


def report(result: Result, path: Path, config: Config) -> None:
    """Print the summary of a saved result (a run and ``--replot`` alike)."""
    print(summarize(result))
    print("wrote", path)


def main(argv: list[str] | None = None) -> Result:
    return cli.main(Config, argv, description=__doc__, quick=QUICK, result_name="finetune", run=run, report=report)


if __name__ == "__main__":
    cli.run(main)
