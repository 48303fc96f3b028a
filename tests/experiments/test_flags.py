"""The flag scheme of every experiment, checked on its ``Config``: every flag has help, ``--help`` shows its
default and ``--quick`` value, names are kebab case, sizes are ``--n-<thing>`` from one vocabulary (no synonyms),
choice values are snake case, booleans are ``--no-x`` (default true) or ``--x`` (default false), and the shared
flags of ``cli.RunConfig`` / ``cli.SweepConfig`` are redeclared only to change their default."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import typing

import pytest

import experiments
from experiments import cli, flags
from experiments.config import metadata
from lens_bias.errors import InputError

#: Every experiment module (all of ``experiments/`` but the shared command line: its config, flags, commands, lock).
SHARED = {"cli", "config", "flags", "commands", "lock", "policy", "results"}
MODULES = sorted(info.name for info in pkgutil.iter_modules(experiments.__path__) if info.name not in SHARED)

#: Every size flag (``--n-<thing>``): bias measures, retention / side-effect measures, contrast pairs, and the
#: other counts the experiments take.
SIZES = {
    *("--n-stereoset", "--n-crows-pairs", "--n-bbq", "--n-persona-bbq"),  # bias measures
    *("--n-neutral", "--n-lms", "--n-knowledge", "--n-bbq-disambig"),  # retention / side effects
    "--n-pairs",  # contrast pairs
    "--n-edges",  # circuit edges patched exactly
    *("--n-test", "--n-eval", "--n-generations", "--n-templates", "--n-random", "--n-layers", "--n-prompts"),
    *(
        "--n-rewordings",
        "--n-service-names",
        "--n-service-templates",
        "--n-service-samples",
    ),  # the audit's chat measures
}
#: Flags that say what another flag of the scheme says, and that flag.
SYNONYMS = {
    "--n": "--n-<thing>",
    "--n-crows": "--n-crows-pairs",
    "--n-side-bbq": "--n-bbq-disambig",
    "--contrasts": "--bias-types",
    "--bias-type": "--bias-types",
    "--interventions": "--intervention",
}
#: Experiments whose BBQ size is BBQ's disambiguated accuracy as a retention measure: ``--n-bbq-disambig``.
BBQ_AS_RETENTION = {"side_effects", "biasscope"}
#: Experiments that take contrast pairs: each takes your own through one pair of flags, ``--pairs-file`` and
#: ``--columns`` (:class:`experiments.config.PairsConfig`).
TAKE_PAIRS = {"steering", "similarity", "patching", "audit"}
#: Flags whose choices are a dataset's own labels, kept as the data spells them (gender-swap groups such as
#: ``occupation-t0``, CrowS-Pairs bias types such as ``race-color``).
DATA_LABELS = {"--group", "--crows-types"}
KEBAB = re.compile(r"--[a-z][a-z0-9]*(-[a-z0-9]+)*")
SNAKE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")


def _config(module: str) -> type[cli.RunConfig]:
    return importlib.import_module(f"experiments.{module}").Config


def scheme_violations(module: str, config: type[cli.RunConfig]) -> list[str]:
    """What in the flags of ``config`` (of ``experiments.<module>``) breaks the scheme (empty: nothing)."""
    base = cli.SweepConfig if issubclass(config, cli.SweepConfig) else cli.RunConfig
    shared = {f.name: f for f in dataclasses.fields(base)}
    hints = typing.get_type_hints(config)
    found = []
    for f in dataclasses.fields(config):
        flag, meta = flags.flag_name(config, f), metadata(config, f.name)
        if not KEBAB.fullmatch(flag):
            found.append(f"{flag}: not kebab case")
        if flag in SYNONYMS:
            found.append(f"{flag}: a synonym of {SYNONYMS[flag]}")
        elif (flag == "--n" or flag.startswith("--n-")) and flag not in SIZES:
            found.append(f"{flag}: not a size of the vocabulary ({', '.join(sorted(SIZES))})")
        if flag == "--n-bbq" and module in BBQ_AS_RETENTION:
            found.append("--n-bbq: BBQ as a retention measure is --n-bbq-disambig")
        if flag not in DATA_LABELS:
            found += [
                f"{flag} {c}: choice not snake case" for c in meta.get("choices", ()) if not SNAKE.fullmatch(str(c))
            ]
        if flags.flag_type(hints[f.name])[0] is bool and flag.startswith("--no-") != (f.default is True):
            found.append(f"{flag}: a switch is --no-x when its default is true, --x when false")
        if f.name in shared and f is not shared[f.name] and f.default == shared[f.name].default:
            found.append(f"{flag}: redeclares a shared flag without changing its default")
    return found


@pytest.mark.parametrize("module", MODULES)
def test_every_flag_has_help(module):
    config = _config(module)
    assert [f.name for f in dataclasses.fields(config) if not metadata(config, f.name).get("help")] == []


@pytest.mark.parametrize("module", MODULES)
def test_help_shows_each_default_and_quick_value(module):
    config, quick = _config(module), getattr(importlib.import_module(f"experiments.{module}"), "QUICK", None)
    assert set(quick or ()) <= {f.name for f in dataclasses.fields(config)}, "a --quick value of no flag"
    assert flags.parser_for(config, None, quick).format_help().startswith("usage:")
    for f in dataclasses.fields(config):
        text, element = flags.help_text(config, f, quick), flags.flag_type(typing.get_type_hints(config)[f.name])[0]
        if element is not bool and f.default is not None:
            assert f"default: {flags.shown(f.default, False)}" in text, f.name
        if quick and f.name in quick and quick[f.name] != f.default:
            assert "--quick: " in text, f.name


@pytest.mark.parametrize("module", MODULES)
def test_flags_follow_the_scheme(module):
    assert scheme_violations(module, _config(module)) == []


def test_the_scheme_check_finds_each_kind_of_violation():
    @dataclasses.dataclass(frozen=True)
    class Bad(cli.RunConfig):
        n_crows: int = dataclasses.field(default=1, metadata={"help": "h"})
        n_things: int = dataclasses.field(default=1, metadata={"help": "h"})
        pairs: str = dataclasses.field(default="a", metadata={"help": "h", "choices": ("a", "crows-pairs")})
        normalize: bool = dataclasses.field(default=True, metadata={"help": "h", "flag": "--raw-norms"})
        seed: int = 0

    assert sorted(scheme_violations("side_effects", Bad)) == [
        "--n-crows: a synonym of --n-crows-pairs",
        f"--n-things: not a size of the vocabulary ({', '.join(sorted(SIZES))})",
        "--pairs crows-pairs: choice not snake case",
        "--raw-norms: a switch is --no-x when its default is true, --x when false",
        "--seed: redeclares a shared flag without changing its default",
    ]


@pytest.mark.parametrize("module", MODULES)
def test_every_smallest_value_is_checked_when_the_flags_are_parsed(module):
    """Each flag with a smallest allowed value (``min``) refuses one below it with one error naming the flag, when
    the command line is parsed: before any model loads."""
    config = _config(module)
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        minimum = metadata(config, f.name).get("min")
        if minimum is None:
            continue
        flag, element = flags.flag_name(config, f), flags.flag_type(hints[f.name])[0]
        with pytest.raises(InputError, match=f"{flag} must be >= {minimum}, got {element(minimum - 1)}"):
            ray = f.name == "workers" and issubclass(config, cli.SweepConfig)  # --workers needs --executor ray
            cli.parse(config, [flag, str(element(minimum - 1)), *(["--executor", "ray"] if ray else [])])


@pytest.mark.parametrize("module", MODULES)
def test_own_pairs_are_one_pair_of_flags_everywhere(module):
    config = _config(module)
    assert issubclass(config, cli.PairsConfig) == (module in TAKE_PAIRS)
    own = {flags.flag_name(config, f) for f in dataclasses.fields(config)} & {"--pairs-file", "--columns"}
    assert own == ({"--pairs-file", "--columns"} if module in TAKE_PAIRS else set())
