"""The committed reference runs (results/reference/) and the README tables made from them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import read_report

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "results" / "reference"


def _script():
    spec = importlib.util.spec_from_file_location("readme_tables",
                                                  ROOT / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs() -> list[Path]:
    return sorted(p for p in REFERENCE.iterdir() if p.is_dir())


def test_the_readme_tables_are_the_committed_reports():
    script = _script()
    readme = (ROOT / "README.md").read_text()
    blocks = [m.group("name") for m in script.BLOCK.finditer(readme)]
    assert blocks and set(blocks) <= {p.name for p in _runs()}
    assert script.regenerate(readme) == readme, (
        "README.md's reference tables differ from results/reference/: run "
        "python scripts/readme_tables.py")
    assert script.main(["--check"]) == 0


def test_a_changed_report_changes_the_readme_table(tmp_path):
    script = _script()
    name = _runs()[0].name
    shutil.copytree(REFERENCE / name, tmp_path / name)
    report = tmp_path / name / "report.json"
    text = report.read_text()
    assert '"params_m": 22.05' in text
    report.write_text(text.replace('"params_m": 22.05', '"params_m": 99.05', 1))
    readme = (ROOT / "README.md").read_text()
    fresh = script.regenerate(readme, tmp_path)
    assert "| vit:small | 99.05 |" in fresh and "| vit:small | 99.05 |" not in readme


@pytest.mark.parametrize("run", _runs(), ids=lambda p: p.name)
def test_each_reference_run_is_a_whole_real_run_folder(run):
    from archbench.report.merge import load_run

    names = {p.name for p in run.iterdir()}
    assert {"report.json", "report.md", "report.csv"} <= names
    assert not [n for n in names if "sqlite" in n]
    document = load_run(run)
    assert document["rows"] and all(r["status"] == "ok" for r in document["rows"])
    assert all(r.get("latency_ms_median") for r in document["rows"])
    assert not any(r.get("contended") for r in document["rows"])


def test_gitignore_keeps_the_reference_runs_and_ignores_the_rest():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "--no-index", "-q", path],
                              cwd=ROOT).returncode == 0

    assert not ignored("results/README.md")
    assert not ignored("results/reference/README.md")
    assert not ignored(f"results/reference/{_runs()[0].name}/report.json")
    assert ignored("results/20261130-041502-compare-vit/report.json")
    assert ignored("results/archbench.sqlite")
    assert ignored("results/reference/archbench.sqlite")


def test_a_user_compares_the_counts_with_the_reference_run(run_cli):
    name = _runs()[0].name
    result = run_cli("compare", "vit", "--no-latency", "--baseline",
                     str(REFERENCE / name), "--fail-on", "gmacs:0,params:0")
    assert result.exit_code == 0, result.output
    entry = read_report(result.run_dir)["rows"][0]["details"]["baseline"]
    assert entry["match"].endswith("count-only") and entry["baseline_model"] == "vit:small"
    for column in ("params_m", "gmacs", "mixer_gmacs_formula", "mixer_gmacs_as_msa"):
        assert entry["deltas"][column]["change"] == 0, column
