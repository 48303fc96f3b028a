"""experiments.bench_patching: the config is checked before any model loads; the layers swept; --replot
prints the summary of a saved result (the benchmark itself is run by hand: it times both libraries)."""

from __future__ import annotations

import pytest

from experiments import bench_patching, cli
from lens_bias.errors import InputError
from lens_bias.patching.bench import swept_layers
from lens_bias.provenance import Result


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--stem", "a/b"], "without folders"),
    ],
)
def test_bad_config_is_refused_before_any_model_loads(no_model, argv, message):
    with pytest.raises(InputError, match=message):
        bench_patching.main(argv)


def test_quick_and_the_swept_layers():
    config, _ = cli.parse(bench_patching.Config, ["--quick"], quick=bench_patching.QUICK)
    assert (config.n_layers, config.iterations, config.stem, config.device) == (6, 4, "bench_patching_quick", "cpu")
    assert swept_layers(30, 6) == [0, 6, 12, 17, 23, 29]
    assert swept_layers(30, 6) == sorted({round(i * 29 / 5) for i in range(6)})  # as before
    assert swept_layers(4, 6) == swept_layers(4, None) == [0, 1, 2, 3]
    assert swept_layers(4, 1) == [0]


def test_replot_prints_the_summary(tmp_path, capsys):
    entry = {
        "shape": [4, 8],
        "lens_bias_s": 1.0,
        "transformer_lens_s": 3.0,
        "speedup": 3.0,
        "lens_bias_cpu_s": 2.0,
        "transformer_lens_cpu_s": 5.0,
        "cpu_speedup": 2.5,
        "max_abs_difference": 1e-7,
        "lens_bias_peak_rss_rise_mb": 10.0,
        "transformer_lens_peak_rss_rise_mb": None,
        "lens_bias_forwards": 2,
        "lens_bias_configs_run": 20,
        "configs": 32,
        "attribution": {"seconds": 0.5, "pearson": 0.9, "top_k_overlap": 0.8},
    }
    memory = {
        "iterations": 2,
        "rss_mb": [600.0, 601.0, 601.0],
        "growth_second_half_mb": 0.0,
        "trend_second_half_mb_per_sweep": 0.0,
    }
    path = Result("bench_patching", values={"sweeps": {"z": entry}, "memory": memory}, config={}, provenance={}).save(
        tmp_path / "bench_patching"
    )
    bench_patching.main(["--replot", str(path)])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "        z sweep (4, 8): lens_bias 1.0 s (2 forwards, 20 of 32 configurations run), "
        "TransformerLens 3.0 s -> 3.0x faster (CPU time 2.0 s vs 5.0 s: 2.5x); max |difference| "
        "1.00e-07; peak RSS rise 10.0 MB vs n/a; attribution patching 0.50 s, vs exact: Pearson 0.900, "
        "top-10 overlap 0.8"
    )
    assert out[1].startswith("flat memory: RSS 600 MB before 2 resid_pre sweeps, 601 601 MB after each")
