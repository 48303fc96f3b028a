"""lm-evaluation-harness's ``crows_pairs_english`` task on given pairs, timed: a script for an interpreter where
``lm_eval`` is installed (``python harness_driver.py SPEC.json``), run by
:func:`lens_bias.benchmarks.throughput.harness_timing`; lens_bias itself never imports ``lm_eval``.

The spec names ``csv`` (the pairs: ``sent_more``, ``sent_less``, ``bias_type``), ``model`` (a Hugging Face model
folder), ``dtype``, ``batch_size``, ``threads`` (None: torch's own) and ``out``. The task is the harness's own:
its ``lm_eval/tasks/crows_pairs/utils.py`` copied unchanged beside a YAML with the fields of its
``crows_pairs_english.yaml``, the dataset pointed at ``csv``. The model loads first (not timed); one pair warms
up; then the whole evaluation is timed (wall and this process's CPU seconds, every thread). Written to ``out``:
``seconds``, ``cpu_seconds``, ``lls`` (``[n, 2]`` each pair's summed log-likelihoods of ``sent_more`` and
``sent_less``, nats, in the CSV's order), ``pct_stereotype`` (the harness's aggregate, a fraction) and the
harness's version.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

TASK = "crows_pairs_english_local"
YAML = """task: {task}
dataset_path: csv
dataset_kwargs:
  data_files:
    test: {csv}
test_split: test
output_type: multiple_choice
doc_to_text: ""
doc_to_target: 0
doc_to_choice: !function utils.doc_to_choice
target_delimiter: ""
process_results: !function utils.process_results
metric_list:
  - metric: likelihood_diff
    aggregation: mean
    higher_is_better: false
  - metric: pct_stereotype
    aggregation: mean
    higher_is_better: false
metadata:
  version: 1.0
"""


def main(spec_path: str) -> None:
    import lm_eval
    import lm_eval.tasks.crows_pairs.utils as harness_utils
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(harness_utils.__file__, Path(folder) / "utils.py")
        (Path(folder) / f"{TASK}.yaml").write_text(YAML.format(task=TASK, csv=spec["csv"]), encoding="utf-8")
        tasks = TaskManager(include_path=folder)
        model = HFLM(pretrained=spec["model"], dtype=spec["dtype"], batch_size=spec["batch_size"], device="cpu")
        lm_eval.simple_evaluate(model=model, tasks=[TASK], task_manager=tasks, limit=1)
        start, cpu = time.perf_counter(), time.process_time()
        out = lm_eval.simple_evaluate(model=model, tasks=[TASK], task_manager=tasks, log_samples=True)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    samples = sorted(out["samples"][TASK], key=lambda sample: sample["doc_id"])
    record = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "lls": [[float(resp[0][0]) for resp in sample["resps"]] for sample in samples],
        "pct_stereotype": out["results"][TASK]["pct_stereotype,none"],
        "version": importlib.metadata.version("lm_eval"),
    }
    Path(spec["out"]).write_text(json.dumps(record), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
