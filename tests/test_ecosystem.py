"""The plugin ecosystem: the timm plugin, a third-party plugin package installed with pip
(examples/archbench-convnext), a plugin that fails to import, and the plugin author's guide
(docs/plugins.md) checked against the hooks and run."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import read_report

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "archbench-convnext"
GUIDE = ROOT / "docs" / "plugins.md"
ARCHBENCH = Path(sys.executable).with_name("archbench")


# -- the timm plugin ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("vit:small", "timm:vit_small_patch16_224"),
        ("swin:tiny", "timm:swin_tiny_patch4_window7_224"),
    ],
)
def test_timm_rows_match_our_own_models(analyze, ours, theirs):
    mine, _ = analyze(ours)
    timms, _ = analyze(theirs)
    assert mine["params_m"] == pytest.approx(timms["params_m"], rel=1e-9)
    assert mine["gmacs"] == pytest.approx(timms["gmacs"], rel=1e-9)
    assert mine["mixer_gmacs"] == pytest.approx(timms["mixer_gmacs"], rel=1e-9)
    assert mine["mixer"] == timms["mixer"]


def test_timm_wildcard_listing(run_cli):
    result = run_cli("list", "timm:*convnext*", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert "timm:convnext_tiny" in rows
    assert all("convnext" in name for name in rows)
    assert rows["timm:convnext_tiny"]["input"] == "224x224"
    assert rows["timm:convnext_tiny"]["plugin"] == "timm"
    table = run_cli("list", "timm:*convnext*")
    assert table.exit_code == 0 and "timm:convnext_tiny " in table.stdout


def test_timm_unknown_name_lists_close_matches(run_cli):
    result = run_cli("compare", "timm:convnxt_tiny", "--no-latency")
    assert result.exit_code == 2
    assert "unknown timm model 'convnxt_tiny'" in result.stderr
    assert "convnext_tiny" in result.stderr
    assert result.run_dir is None


def test_timm_img_size_is_passed_where_the_model_takes_it(plugin_manager):
    import torch

    from archbench.core.registry import Registry

    registry = Registry.from_plugins(plugin_manager)
    with torch.device("meta"):
        vit = plugin_manager.hook.archbench_build_model(
            spec=registry.resolve("timm:vit_small_patch16_224", img_size=256), swap=None
        )
        cnn = plugin_manager.hook.archbench_build_model(
            spec=registry.resolve("timm:resnet18", img_size=256), swap=None
        )
    assert vit.pos_embed.shape[1] == (256 // 16) ** 2 + 1
    assert type(cnn).__name__ == "ResNet"  # no img_size argument: only the input changes


def test_list_without_pattern_imports_neither_timm_nor_torch():
    code = textwrap.dedent("""
        import sys
        from archbench.cli import main
        try:
            main(["list"])
        except SystemExit:
            pass
        print("IMPORTED", "torch" in sys.modules, "timm" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED False False" in out.stdout


# -- third-party plugin packages, installed with pip ----------------------------------


def _pip_unusable() -> str | None:
    """Why plugin packages cannot be pip-installed here, or None."""
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "--version"], check=True, capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return "pip does not run in this environment"
    if importlib.util.find_spec("hatchling") is None:
        return "hatchling (the test extra) is not installed"
    return None


PIP_UNUSABLE = _pip_unusable()
needs_pip = pytest.mark.skipif(PIP_UNUSABLE is not None, reason=PIP_UNUSABLE or "")


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-input", "--disable-pip-version-check",
         "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stderr}"


@contextlib.contextmanager
def installed(package: Path, distribution: str):
    """``package`` pip-installed into this test environment, as a user installs a plugin;
    uninstalled again on exit."""
    _pip("install", "--no-deps", "--no-build-isolation", str(package))
    try:
        yield
    finally:
        _pip("uninstall", "--yes", distribution)


def archbench(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the installed ``archbench`` program; ``ARCHBENCH_*`` variables from the caller's
    environment are dropped, ``env`` added."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARCHBENCH_")}
    environ.update(env)
    return subprocess.run(
        [str(ARCHBENCH), *args], capture_output=True, text=True, env=environ, timeout=600
    )


def plugins_json(result: subprocess.CompletedProcess) -> dict[str, dict]:
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def convnext_installed():
    """examples/archbench-convnext, pip-installed into the test environment for this
    module's tests, uninstalled after them."""
    with installed(EXAMPLE, "archbench-convnext"):
        yield


@needs_pip
def test_installed_plugin_is_listed_with_its_version(convnext_installed):
    plugins = plugins_json(archbench("plugins", "--json"))
    convnext = plugins["convnext"]
    assert convnext["distribution"] == "archbench-convnext"
    assert convnext["version"] == "0.1.0"
    assert convnext["kind"] == "entry point"
    assert convnext["error"] is None
    assert {
        "archbench_architectures",
        "archbench_build_model",
        "archbench_analyze",
    } <= set(convnext["hooks"])
    listed = archbench("list")
    assert listed.returncode == 0, listed.stderr
    assert "convnext:tiny *" in listed.stdout and "convnext:small" in listed.stdout
    assert "A ConvNet for the 2020s" in listed.stdout


@needs_pip
def test_installed_plugin_compares_beside_the_builtins(convnext_installed, tmp_path):
    result = archbench(
        "compare",
        "convnext",
        "vit",
        "timm:convnext_tiny",
        "--no-latency",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = (p for p in tmp_path.iterdir() if p.is_dir())  # beside archbench.sqlite
    rows = {r["model"]: r for r in read_report(run_dir)["rows"]}
    assert set(rows) == {"convnext:tiny", "vit:small", "timm:convnext_tiny"}
    assert all(r["status"] == "ok" for r in rows.values())
    ours = rows["convnext:tiny"]
    # Liu et al. 2022, Table 1: ConvNeXt-T has 28M parameters and 4.5 GFLOPs (MACs).
    assert ours["params_m"] == pytest.approx(28.589128, abs=1e-6)
    assert ours["gmacs"] == pytest.approx(4.5, abs=0.05)
    assert ours["params_m"] == pytest.approx(rows["timm:convnext_tiny"]["params_m"], rel=1e-9)
    # The analytic H*W*C*49 equals fvcore's count of exactly the depth-wise convolutions.
    assert ours["mixer"] == "dwconv7x7"
    assert ours["mixer_gmacs_formula"] == pytest.approx(ours["mixer_gmacs"], rel=1e-12)
    assert ours["mixer_gmacs_formula"] == pytest.approx(
        sum(
            d * (56 // 2**i) ** 2 * c * 49
            for i, (d, c) in enumerate(zip((3, 3, 9, 3), (96, 192, 384, 768)))
        )
        / 1e9,
        rel=1e-12,
    )
    assert ours["mixer_msa_saving"] > 1
    assert ours["gmacs_crosscheck_diff"] == pytest.approx(0, abs=1e-6)  # builds on meta
    assert ours["details"]["mixer_formula"]["notes"]
    assert rows["vit:small"]["mixer"] == "msa"


@needs_pip
def test_disable_autoload_hides_third_party_plugins(convnext_installed):
    off = {"ARCHBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    plugins = plugins_json(archbench("plugins", "--json", **off))
    assert "convnext" not in plugins
    assert {"counting", "latency", "vit", "timm"} <= set(plugins)
    listed = archbench("list", **off)
    assert listed.returncode == 0, listed.stderr
    assert "convnext:" not in listed.stdout and "vit:small *" in listed.stdout


@needs_pip
def test_plugin_that_fails_to_import_costs_a_warning_not_the_cli(tmp_path):
    package = tmp_path / "archbench-boom"
    (package / "archbench_boom").mkdir(parents=True)
    (package / "archbench_boom" / "__init__.py").write_text('raise RuntimeError("boom")\n')
    (package / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "archbench-boom"
        version = "6.6.6"

        [project.entry-points.archbench]
        boom = "archbench_boom"
    """)
    )
    with installed(package, "archbench-boom"):
        listed = archbench("list")
        boom = plugins_json(archbench("plugins", "--json"))["boom"]
    assert listed.returncode == 0, listed.stderr
    assert "vit:small *" in listed.stdout
    assert "plugin 'boom' (archbench-boom 6.6.6) failed to load" in listed.stderr
    assert boom["error"] == "RuntimeError: boom"
    assert boom["version"] == "6.6.6"


def test_convnext_schema_rejects_bad_configs(monkeypatch):
    """The example's schema, imported from its source tree (no install, no torch)."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import archbench_convnext

    from archbench import UsageError
    from archbench.core.registry import Registry
    from archbench.core.schema import check_spec

    registry = Registry([archbench_convnext.CONVNEXT])
    for target, kwargs, message in [
        ("convnext", {"img_size": 100}, "not divisible by the total stride 32"),
        ("convnext:small", {"overrides": {"kernel_size": "6"}}, "kernel_size must be odd"),
        ("convnext", {"overrides": {"depths": "(2, 2, 6)"}}, "as many entries as depths"),
        ("convnext", {"overrides": {"dims": "(96, 0, 384, 768)"}}, r"dims\[1\] must be at least 1"),
        ("convnext", {"overrides": {"dims": "(9600, 19200, 38400, 65536)"}}, "billion parameters"),
    ]:
        with pytest.raises(UsageError, match=message):
            check_spec(registry.resolve(target, **kwargs))
    check_spec(registry.resolve("convnext", img_size=256))


# -- the plugin author's guide --------------------------------------------------------


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_guide_has_one_section_per_hook():
    from archbench import hookspecs

    hooks = {
        name
        for name, obj in vars(hookspecs).items()
        if name.startswith("archbench_") and inspect.isfunction(obj)
    }
    sections = re.findall(r"^## (archbench_\w+)\s*$", _guide(), flags=re.MULTILINE)
    assert len(sections) == len(set(sections)), "a hook has two sections"
    assert not hooks - set(sections), f"hooks without a section: {sorted(hooks - set(sections))}"
    assert not set(sections) - hooks, f"sections for no hook: {sorted(set(sections) - hooks)}"


def test_guide_documents_the_variables_columns_and_command():
    from archbench.plugins import DISABLE_AUTOLOAD_ENV, EXTRA_PLUGINS_ENV

    text = _guide()
    for needed in (
        DISABLE_AUTOLOAD_ENV,
        EXTRA_PLUGINS_ENV,
        "archbench plugins",
        "[project.entry-points.archbench]",
        "mixer",
        "mixer_gmacs_formula",
        "mixer_gmacs_as_msa",
        "mixer_gmacs_as_wmsa",
        "mixer_msa_saving",
        "mixer_formula",
    ):
        assert needed in text, needed


def test_guide_minimal_plugin_runs(run_cli, monkeypatch, tmp_path):
    blocks = re.findall(r"```python\n# (\w+)\.py\n(.*?)```", _guide(), flags=re.DOTALL)
    assert len(blocks) == 1, "docs/plugins.md needs one ```python block starting '# NAME.py'"
    module_name, body = blocks[0]
    assert body.count("\n") + 1 < 40, "the minimal plugin is supposed to be short"
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / f"{module_name}.py").write_text(f"# {module_name}.py\n{body}")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("ARCHBENCH_PLUGINS", module_name)
    try:
        import_result = run_cli("plugins", "--json")
        plugin = {p["name"]: p for p in json.loads(import_result.stdout)}[module_name]
        assert plugin["kind"] == "env" and plugin["error"] is None
        (arch,) = sys.modules[module_name].archbench_architectures()
        result = run_cli("compare", arch.name, "--no-latency")
        assert result.exit_code == 0, result.output
        (row,) = read_report(result.run_dir)["rows"]
        assert row["model"] == f"{arch.name}:{arch.default_variant}"
        assert row["status"] == "ok" and row["params_m"] > 0 and row["gmacs"] > 0
    finally:
        sys.modules.pop(module_name, None)


def test_guide_pytest_example_passes(tmp_path):
    """The guide's own pytest example, run by pytest next to the minimal plugin."""
    text = _guide()
    ((module_name, plugin),) = re.findall(r"```python\n# (\w+)\.py\n(.*?)```", text, re.DOTALL)
    (test,) = re.findall(r"```python\n(# (test_\w+\.py), next to .*?)```", text, re.DOTALL)
    (tmp_path / f"{module_name}.py").write_text(f"# {module_name}.py\n{plugin}")
    (tmp_path / test[1]).write_text(test[0])
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ARCHBENCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test[1]],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
