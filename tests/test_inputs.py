"""Bad input of every kind is refused in one line (``archbench: error: ...``), exit 2,
before anything is built or written: options that pass click but make no sense, ``--set``
values, fp16 on the CPU, malformed targets, click's own usage errors, and what used to be
tracebacks. Then the config schema itself: every built-in variant passes it, its
parameter estimates match the published counts, and the guide's example works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import archbench_testplugin
import pytest

from archbench import UsageError
from archbench.core.registry import Registry
from archbench.core.schema import Field, Schema, check_spec

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def assert_refused(result, message: str) -> None:
    """Exit 2, one line on stderr starting ``archbench: error:`` that says ``message``, no
    traceback, nothing built, no run folder."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("archbench: error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert archbench_testplugin.BUILDS == []
    assert result.run_dir is None


# -- options that pass click but make no sense ---------------------------------------------

OPTIONS = [
    (("--min-time", "nan"), "--min-time must be between 0 and 86400"),
    (("--min-time", "inf"), "--min-time must be between 0 and 86400"),
    (("--min-time", "-1"), "'--min-time': -1.0 is not in the range"),
    (("--min-time", "100000"), "--min-time must be between 0 and 86400"),
    (("--max-memory", "nan"), "--max-memory must be a finite number"),
    (("--max-memory", "inf"), "--max-memory must be a finite number"),
    (("--max-memory", "-5"), "'--max-memory'"),
    (("--target-ci", "0"), "--target-ci is a percentage"),
    (("--target-ci", "100"), "--target-ci is a percentage"),
    (("--target-ci", "-5"), "--target-ci is a percentage"),
    (("--target-ci", "nan"), "--target-ci is a percentage"),
    (("--target-ci", "inf"), "--target-ci is a percentage"),
    (("--target-ci", "5", "--no-latency"), "with --no-latency nothing is timed"),
    (("--max-time", "5"), "give --target-ci too"),
    (("--target-ci", "5", "--max-time", "0"), "--max-time must be more than 0"),
    (("--target-ci", "5", "--max-time", "-1"), "--max-time must be more than 0"),
    (("--target-ci", "5", "--max-time", "nan"), "--max-time must be more than 0"),
    (("--target-ci", "5", "--max-time", "inf"), "--max-time must be more than 0"),
    (("--target-ci", "5", "--max-time", "1e9"), "--max-time must be more than 0"),
    (("--warmup", "1000000000"), "--warmup must be at most 1000000"),
    (("--repeat", "1000000000"), "--repeat must be at most 100000"),
    (("--threads", "1000000"), "--threads must be at most 4096"),
]


@pytest.mark.parametrize(("args", "message"), OPTIONS, ids=[" ".join(a) for a, _ in OPTIONS])
def test_absurd_options_are_refused(run_cli, args, message):
    assert_refused(run_cli("compare", "toy", *args), message)


@pytest.mark.parametrize(("command", "message"), [
    (("sweep", "toy", "--img-sizes", "32", "--min-time", "nan"), "--min-time"),
    (("sweep", "toy", "--img-sizes", "32", "--max-time", "3"), "give --target-ci too"),
    (("mixers", "toy-mixer", "--target-ci", "100"), "--target-ci is a percentage"),
    (("mixers", "toy-mixer", "--max-memory", "inf"), "--max-memory must be a finite"),
])
def test_every_measuring_command_checks_its_options(run_cli, command, message):
    assert_refused(run_cli(*command), message)


# -- --set values and overrides --------------------------------------------------------------

SETS = [
    (("vit", "--set", "depth=0"), "vit:small[depth=0]: depth must be at least 1, got 0"),
    (("vit", "--set", "depth=-1"), "depth must be at least 1, got -1"),
    (("vit", "--set", "embed_dim=0"), "embed_dim must be at least 1, got 0"),
    (("vit", "--set", "patch_size=0"), "patch_size must be at least 1, got 0"),
    (("vit", "--set", "num_heads=0"), "num_heads must be at least 1, got 0"),
    (("vit", "--set", "mlp_ratio=nan"), "mlp_ratio must be a finite number, got nan"),
    (("vit", "--set", "mlp_ratio=inf"), "mlp_ratio must be a finite number, got inf"),
    (("vit", "--set", "mlp_ratio=-1"), "mlp_ratio must be greater than 0, got -1.0"),
    (("vit", "--set", "depth=100000000"), "depth must be at most 1000"),
    (("vit", "--set", "embed_dim=60000"), "billion parameters"),
    (("vit", "--set", "depth=1e3"), "depth=1e3: expected a value of type int"),
    (("vit", "--set", "depth=three"), "expected a value of type int"),
    (("vit", "--set", "nokey=3"), "has no config field 'nokey'"),
    (("vit", "--set", "depth"), "is not KEY=VALUE"),
    (("vit", "--set", "=3"), "is not KEY=VALUE"),
    (("vit", "--set", ".depth=3"), "is not KEY=VALUE"),
    (("vit", "--set", "depth="), "no value after '='"),
    (("vit", "--set", "depth=3", "--set", "depth=4"), "depth is given twice (3 and 4)"),
    (("vit", "--set", "foo.depth=3"), "--set foo.depth=3: unknown architecture 'foo'"),
    (("vit", "--set", "swin.depth=2"), "--set swin.depth=2: swin is not among the targets"),
    (("vit[depth=0]",), "vit:small[depth=0]: depth must be at least 1"),
    (("swin", "--set", "window_size=0"), "window_size must be at least 1, got 0"),
    (("swin[window_size=0]",), "window_size must be at least 1, got 0"),
    (("swin", "--set", "num_heads=0"), "num_heads[0] must be at least 1, got 0"),
    (("swin", "--set", "num_heads=(3,6,12)"), "must have as many entries as depths"),
    (("swin", "--set", "depths=(2,2,0,2)"), "depths[2] must be at least 1, got 0"),
    (("swin", "--set", "depths=()"), "depths must have at least 1 entry, got ()"),
    (("swin", "--set", "depths=((((("), "expected a value of type tuple"),
    (("swin", "--set", "embed_dim=3072", "--set", "depths=(2,2,60,2)"), "billion parameters"),
    (("swin", "--img-size", "226"), "image size 226 is not divisible by patch_size 4"),
    (("hornet", "--set", "kernel_size=4"), "kernel_size must be odd, got 4"),
    (("hornet", "--set", "drop_path_rate=nan"), "drop_path_rate must be a finite number"),
    (("hornet", "--set", "orders=(2,3,4,9)"), "orders[3] must be at most 5, got 9"),
    (("transformer", "--set", "dropout=1.5"), "dropout must be less than 1, got 1.5"),
    (("transformer", "--set", "num_heads=0"), "num_heads must be at least 1, got 0"),
    (("transformer", "--set", "fused_attention=maybe"), "expected a value of type bool"),
    (("transformer", "--seq-len", "9000"), "sequence length must be at most 8192"),
    (("toy", "--set", "width=0"), "toy:tiny[width=0]: width must be at least 1, got 0"),
    (("toy", "--set", "width=100000000"), "width must be at most 1048576"),
]


@pytest.mark.parametrize(("args", "message"), SETS, ids=[" ".join(a) for a, _ in SETS])
def test_bad_config_values_are_refused(run_cli, args, message):
    assert_refused(run_cli("compare", *args), message)


def test_a_config_value_is_refused_in_sweep_too(run_cli):
    result = run_cli("sweep", "vit", "--img-sizes", "224,225", "--no-latency")
    assert_refused(result, "vit:small: image size 225 is not divisible by patch_size 16")


def test_scoped_set_for_a_target_applies_and_wins_over_the_unscoped_one():
    registry = Registry([_schema_free_arch("one"), _schema_free_arch("two")])
    one = registry.resolve("one", overrides={"one.depth": "5", "depth": "3"})
    two = registry.resolve("two", overrides={"one.depth": "5", "depth": "3"})
    assert one.config["depth"] == 5 and two.config["depth"] == 3


# -- fp16 on the CPU ---------------------------------------------------------------------------

CPU_ONLY = pytest.mark.skipif(__import__("torch").cuda.is_available(),
                              reason="--device auto is a GPU here")
FP16 = [
    pytest.param(("compare", "toy", "--dtype", "fp16", "--device", "cpu"), id="compare cpu"),
    pytest.param(("sweep", "toy", "--img-sizes", "32", "--dtype", "fp16", "--device", "cpu"),
                 id="sweep cpu"),
    pytest.param(("mixers", "toy-mixer", "--dtype", "fp16", "--device", "cpu"), id="mixers cpu"),
    pytest.param(("compare", "toy", "--dtype", "fp16"), id="compare auto", marks=CPU_ONLY),
    pytest.param(("mixers", "toy-mixer", "--dtype", "fp16"), id="mixers auto", marks=CPU_ONLY),
]


@pytest.mark.parametrize("command", FP16)
def test_fp16_on_the_cpu_is_refused(run_cli, command):
    assert_refused(run_cli(*command), "--dtype fp16 on the CPU")


# -- malformed targets -----------------------------------------------------------------------

TARGETS = [
    ("vit:", "nothing after ':'"),
    (":tiny", "the architecture name is missing"),
    ("", "the architecture name is missing"),
    ("vit+", "nothing after '+'"),
    ("vit:+msa", "nothing after ':'"),
    ("vit@", "the size after @ must be a positive integer, got ''"),
    ("vit[]", "empty [ ]"),
    ("vit[=3]", "[=3] is not KEY=VALUE"),
    ("vit[1x=3]", "[1x=3] is not KEY=VALUE"),
    ("vit[depth=]", "[depth=] has no value"),
    ("vit[depth=3,]", "an empty item between commas"),
    ("vit[depth=3,depth=4]", "depth is given twice"),
    ("vit[depth=3", "'[' is never closed"),
    ("vit[depth=(3]", "unbalanced brackets"),
    ("vit[depth=3]x", "unexpected 'x' after ']'"),
    ("vit[depth=3]]", "unexpected ']' after ']'"),
    ("vit@224[depth=3]", "@SIZE goes last"),
    ("vit::tiny", "more than one ':'"),
    ("vit:tiny:x", "more than one ':'"),
    ("vit+msa+gnconv", "one +MIXER per target"),
    ("vit+msa:tiny", ":VARIANT comes before +MIXER"),
    ("vit@@224", "the size after @ must be a positive integer, got '@224'"),
    ("vit@abc", "got 'abc'"),
    ("vit@0", "got '0'"),
    ("vit@-1", "got '-1'"),
    ("vit]", "']' without '['"),
    ("vit :tiny", "spaces are not allowed outside [...]"),
    (" vit", "spaces are not allowed outside [...]"),
    ("vit ", "spaces are not allowed outside [...]"),
    ("vit,swin", "give each target as its own argument"),
    ("depth=3", "KEY=VALUE overrides go inside [...]"),
    ("vit:small*", "wildcards select names in archbench list"),
]


@pytest.mark.parametrize(("target", "message"), TARGETS, ids=[repr(t) for t, _ in TARGETS])
def test_malformed_targets_are_refused(run_cli, target, message):
    assert_refused(run_cli("compare", target, "--no-latency"), message)


def test_a_malformed_target_is_refused_in_sweep_too(run_cli):
    assert_refused(run_cli("sweep", "toy", "vit::tiny", "--img-sizes", "32"), "more than one")


def test_well_formed_targets_still_parse():
    from archbench.core.targets import Target

    target = Target.parse("swin:tiny+gnconv[depths=(2, 2, 2, 2), window_size=14]@256")
    assert (target.arch, target.variant, target.mixer, target.size) == (
        "swin", "tiny", "gnconv", 256)
    assert target.overrides == {"depths": "(2, 2, 2, 2)", "window_size": "14"}
    assert Target.parse("timm:vit_base_patch16_224.augreg_in21k").variant.endswith("in21k")


# -- click's own usage errors ------------------------------------------------------------------

CLICK = [
    (("compare", "toy", "--bogus"), "No such option '--bogus'"),
    (("compare",), "Missing argument 'TARGET...'"),
    (("compare", "toy", "--dtype", "fp99"), "'fp99' is not one of"),
    (("compare", "toy", "--mode", "fly"), "'fly' is not one of"),
    (("compare", "toy", "--warmup", "x"), "'--warmup'"),
    (("compare", "toy", "--repeat", "0"), "'--repeat'"),
    (("sweep",), "Missing argument 'TARGET...'"),
    (("mixers", "--dim", "x"), "'--dim'"),
    (("list", "a", "b"), "unexpected extra argument"),
    (("report",), "Missing argument"),
    (("nosuchcommand",), "No such command 'nosuchcommand'"),
    (("--bogus",), "No such option '--bogus'"),
]


@pytest.mark.parametrize(("args", "message"), CLICK, ids=[" ".join(a) for a, _ in CLICK])
def test_click_usage_errors_are_one_line(run_cli, args, message):
    result = run_cli(*args)
    assert_refused(result, message)
    assert "--help" in result.stderr  # where to look instead of the usage text


def test_help_and_version_still_work(run_cli):
    for args in (("--help",), ("compare", "--help"), ("-h",)):
        result = run_cli(*args)
        assert result.exit_code == 0 and "Usage:" in result.stdout
    assert run_cli("--version").stdout.startswith("archbench, version")


@pytest.mark.parametrize("args", [("compare", "vit", "--bogus"), ("compare", "vit:"),
                                  ("compare", "vit", "--set", "mlp_ratio=nan")])
def test_one_line_from_the_real_program(args, tmp_path):
    env = {**os.environ, "ARCHBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    program = Path(sys.executable).with_name("archbench")
    out = subprocess.run([str(program), *args, "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("archbench: error: ")
    assert not (tmp_path / "out").exists()


# -- what used to be a traceback -----------------------------------------------------------------


def test_unknown_architecture_in_sweep(run_cli):
    result = run_cli("sweep", "nope", "--img-sizes", "224", "--no-latency")
    assert_refused(result, "unknown architecture 'nope'")


def test_train_mode_refuses_an_invalid_config_before_anything_runs(run_cli):
    result = run_cli("compare", "toy", "vit:tiny", "--mode", "train",
                     "--set", "vit.mlp_ratio=-1", "--no-latency")
    assert_refused(result, "vit:tiny[mlp_ratio=-1.0]: mlp_ratio must be greater than 0")


def test_a_plugin_validate_that_raises_is_one_line_naming_it(run_cli, monkeypatch, tmp_path):
    (tmp_path / "archbench_divider.py").write_text(
        "from archbench import hookimpl\n\n"
        "@hookimpl\ndef archbench_validate(spec):\n"
        "    if spec.config.get('width') == 3:\n"
        "        return 8 % (spec.config['width'] - 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ARCHBENCH_PLUGINS", "archbench_testplugin,archbench_divider")
    result = run_cli("compare", "toy[width=3]", "--no-latency")
    assert_refused(result, "plugin 'archbench_divider', archbench_validate: ZeroDivisionError")
    assert "--debug" not in result.stderr  # no row, so no traceback to show


# -- the schema itself -------------------------------------------------------------------------


def _schema_free_arch(name: str):
    from archbench import Architecture, Variant

    return Architecture(name=name, family=name, paper="none", input_kind="image",
                        variants={"tiny": Variant(config={"depth": 2, "pad": 0, "scale": 0.5,
                                                          "stages": (1, 2), "act": "gelu"},
                                                  img_size=32)},
                        default_variant="tiny")


@pytest.mark.parametrize(("override", "message"), [
    ({"depth": "0"}, "depth must be at least 1, got 0"),
    ({"pad": "-1"}, "pad must be at least 0, got -1"),
    ({"scale": "nan"}, "scale must be a finite number, got nan"),
    ({"scale": "-0.5"}, "scale must be at least 0, got -0.5"),
    ({"stages": "(1, 0)"}, "stages[1] must be at least 1, got 0"),
    ({"stages": "()"}, "stages must have at least 1 entry"),
])
def test_a_schema_is_inferred_for_an_architecture_without_one(override, message):
    registry = Registry([_schema_free_arch("free")])
    check_spec(registry.resolve("free", overrides={"pad": "0", "act": "relu"}))
    with pytest.raises(UsageError, match=re.escape(message)):
        check_spec(registry.resolve("free", overrides=override))


def test_schema_checks_run_in_order_so_rules_never_see_bad_keys():
    from archbench import Architecture, Variant

    def divides(spec):
        return "odd" if 12 % spec.config["n"] else None  # a zero would raise here

    arch = Architecture(name="r", family="r", paper="none", input_kind="image",
                        variants={"v": Variant(config={"n": 3}, img_size=8)},
                        default_variant="v",
                        schema=Schema(fields={"n": Field(int, minimum=1)}, rules=(divides,)))
    registry = Registry([arch])
    with pytest.raises(UsageError, match="n must be at least 1, got 0"):
        check_spec(registry.resolve("r", overrides={"n": "0"}))
    with pytest.raises(UsageError, match="r:v\\[n=5\\]: odd"):
        check_spec(registry.resolve("r", overrides={"n": "5"}))


def test_every_registered_variant_passes_its_schema(plugin_manager):
    registry = Registry([*Registry.from_plugins(plugin_manager).architectures.values(),
                         archbench_testplugin.TOY])
    checked = 0
    for arch, name, _ in registry.match("*"):
        check_spec(registry.resolve(f"{arch.name}:{name}"))
        checked += 1
    assert checked >= 26 + len(archbench_testplugin.TOY.variants)


@pytest.mark.parametrize(("target", "published"), [
    ("vit:base", 86_567_656), ("vit:small", 22_050_664), ("swin:tiny", 28_288_354),
    ("swin:base_384", 87_903_584), ("hornet:tiny", 22_409_512),
    ("transformer:base", 63_082_496), ("transformer:big", 214_245_376),
])
def test_parameter_estimates_are_within_one_percent_of_the_real_counts(plugin_manager, target,
                                                                       published):
    """The counts of README's table (asserted against the built models elsewhere)."""
    spec = Registry.from_plugins(plugin_manager).resolve(target)
    assert spec.arch.schema.params(spec) == pytest.approx(published, rel=0.01)


def test_guide_schema_example_refuses_what_the_guide_says(monkeypatch):
    text = GUIDE.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n# schema example\n(.*?)```", text, re.DOTALL)
    namespace: dict = {}
    exec(compile(code, "schema example", "exec"), namespace)  # noqa: S102
    registry = Registry([namespace["PYRAMID"]])
    check_spec(registry.resolve("pyramid"))
    shown = re.findall(r"\$ archbench compare (.*)\narchbench: error: (.*)", text)
    shown = [(args, line) for args, line in shown if "pyramid" in args]
    assert len(shown) == 4
    for args, line in shown:
        target, _, rest = args.partition(" ")
        overrides = dict(item.split("=", 1) for item in re.findall(r"--set (\S+)", rest))
        spec = registry.resolve(target.strip("'"), overrides={
            key: value.strip("'") for key, value in overrides.items()})
        with pytest.raises(UsageError) as info:
            check_spec(spec)
        assert str(info.value) == line


def test_timm_weights_for_a_timm_model_with_its_own_class_count_are_refused(run_cli, tmp_path):
    """timm would load its weights and leave the 10-class head random: no top-1 from it."""
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "data" / name / "0.png")
    result = run_cli("compare", "timm:vit_tiny_patch16_224[num_classes=10]", "--data",
                     str(tmp_path / "data"), "--weights", "timm")
    assert_refused(result, "sets num_classes=10, timm's vit_tiny_patch16_224 weights have 1000")
