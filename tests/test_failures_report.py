"""Failures of ``archbench report`` that must neither crash it nor mislead (issue 14):
foreign or malformed JSON, merged reports merged again, a run given twice, and model names
and errors that would break the markdown."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import read_report


def warnings_about(result, text: str) -> list[str]:
    return [line for line in result.stderr.splitlines()
            if line.startswith("archbench: warning:") and text in line]


@pytest.fixture
def runs(run_cli, tmp_path):
    """Three count-only run folders of the toy (a, b, c), a on 'GPU A' and b on 'GPU B',
    named apart (runs started in the same second share a folder name; see test_report)."""
    folders = {}
    for name, device in (("a", "GPU A"), ("b", "GPU B"), ("c", None)):
        result = run_cli("compare", "toy", "toy:broken", "--no-latency", out=tmp_path / name)
        folders[name] = result.run_dir.rename(result.run_dir.with_name(f"run-{name}"))
        if device:
            report = read_report(folders[name])
            report["environment"]["device_name"] = device
            (folders[name] / "report.json").write_text(json.dumps(report))
    return folders


def merge(run_cli, tmp_path, *folders):
    out = tmp_path / f"merged-{len(list(tmp_path.glob('merged-*')))}"
    result = run_cli("report", *map(str, folders), "--out", str(out))
    result.merged_dir = next(out.iterdir()) if out.is_dir() else None
    return result


FOREIGN = {
    "not JSON": ("{'rows': [", "cannot be read as JSON"),
    "a list": ("[1, 2]", "not an archbench report (JSON without report_version)"),
    "another tool": ('{"name": "pytest-benchmark", "benchmarks": []}',
                     "JSON without report_version"),
    "another version": ('{"report_version": 0, "rows": []}', "report version 0"),
    "no rows": ('{"report_version": 1}', "'rows' is not a list of rows"),
    "rows not rows": ('{"report_version": 1, "rows": [1]}', "'rows' is not a list of rows"),
    "row without a model": ('{"report_version": 1, "rows": [{"arch": "toy"}]}',
                            "row 1 has no 'model'"),
    "environment not an object": ('{"report_version": 1, "rows": [], "environment": 3}',
                                  "'environment' is not an object"),
}


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_report_refuses_foreign_json_in_one_line_writing_nothing(run_cli, tmp_path, kind):
    text, message = FOREIGN[kind]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "report.json").write_text(text)
    good = run_cli("compare", "toy", "--no-latency", out=tmp_path / "good").run_dir
    result = merge(run_cli, tmp_path, good, foreign)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("archbench: error: ") and message in line
    assert result.merged_dir is None


def test_merging_a_merged_report_keeps_each_rows_run_and_device(run_cli, runs, tmp_path):
    first = merge(run_cli, tmp_path, runs["a"], runs["b"])
    assert first.exit_code == 0, first.output
    again = merge(run_cli, tmp_path, first.merged_dir, runs["c"])
    assert again.exit_code == 0, again.output
    frame = pd.read_csv(again.merged_dir / "report.csv")
    assert list(frame["run"]) == [runs[k].name for k in "aabbcc"]
    assert list(frame["device_name"])[:4] == ["GPU A", "GPU A", "GPU B", "GPU B"]
    merged = read_report(again.merged_dir)
    assert [r["run"] for r in merged["environment"]["runs"]] == [runs[k].name for k in "abc"]
    assert not warnings_about(again, "")


@pytest.mark.parametrize("given", ["same folder twice", "a merged report and its source"])
def test_a_run_given_twice_is_warned_about_and_counted_once(run_cli, runs, tmp_path, given):
    if given == "same folder twice":
        folders = (runs["a"], runs["b"], runs["a"])
    else:
        first = merge(run_cli, tmp_path, runs["a"], runs["b"])
        folders = (first.merged_dir, runs["b"])
    result = merge(run_cli, tmp_path, *folders)
    assert result.exit_code == 0, result.output
    repeated = runs["a" if given == "same folder twice" else "b"]
    (warning,) = warnings_about(result, f"run {repeated.name!r}")
    assert "counted once" in warning
    frame = pd.read_csv(result.merged_dir / "report.csv")
    assert list(frame["run"]) == [runs[k].name for k in "aabb"]
    assert len(read_report(result.merged_dir)["environment"]["runs"]) == 2


def test_model_names_and_errors_cannot_break_the_markdown(run_cli, runs, tmp_path):
    report = read_report(runs["a"])
    report["rows"][1]["model"] = "toy:*bold*|[link](http://x)"
    report["rows"][1]["error"] = "RuntimeError: a|b\nsecond line `code` <b>html</b> [x](y)"
    (runs["a"] / "report.json").write_text(json.dumps(report))
    result = merge(run_cli, tmp_path, runs["a"])
    assert result.exit_code == 0, result.output
    md = (result.merged_dir / "report.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    cells = {len(re.findall(r"(?<!\\)\|", line)) for line in table}
    assert len(table) == 4 and len(cells) == 1  # header, rule, two rows: same columns
    (failed,) = [line for line in md.splitlines() if line.startswith("- toy:")]
    assert "second line" in failed  # one line, not two
    assert r"toy:\*bold\*\|\[link\](http://x)" in failed
    assert r"a\|b" in failed and r"\`code\`" in failed and r"\<b\>html" in failed
    assert "[x](y)" not in md and "*bold*" not in md
