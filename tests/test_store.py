"""The results store: real SQLite files in a temporary folder, written by real runs (and by
writer processes started, killed and raced against each other); ``archbench history`` and
``archbench report --from-store``."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import read_report

from archbench.store import SCHEMA_VERSION, Store

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def _stored(path: Path) -> list[dict]:
    with Store(path, create=False) as store:
        assert store.check() == []
        return store.runs()


def test_two_runs_are_recorded_and_read_back_as_their_report_json(run_cli, tmp_path):
    first = run_cli("compare", "toy", "--no-latency")
    second = run_cli("compare", "toy", "toy:broken", "--no-latency")
    assert first.exit_code == 0 and second.exit_code == 1
    path = tmp_path / "results" / "archbench.sqlite"
    runs = _stored(path)
    ids = [read_report(r.run_dir)["environment"]["store"]["run_id"]
           for r in (second, first)]
    assert [r["id"] for r in runs] == ids  # newest first
    # ids sort by their start to the second (two runs in one second: the store's order)
    assert all(RUN_ID.fullmatch(i) for i in ids) and ids[0][:15] >= ids[1][:15]
    assert f"recorded as run {ids[0]} in {path}" in second.stderr
    newest = runs[0]
    assert newest["complete"] and newest["kind"] == "compare" and newest["row_count"] == 2
    assert newest["run_dir"] == str(second.run_dir)
    assert newest["command"] == read_report(second.run_dir)["command"]
    assert newest["device_names"] == newest["environment"]["device_name"]
    # the working tree's revision where there is one (these tests run in archbench's clone)
    if newest["git_revision"]:
        assert re.fullmatch("[0-9a-f]{40}", newest["git_revision"])
        assert newest["git_dirty"] in (True, False)
    with Store(path, create=False) as store:
        for run, result in ((runs[0], second), (runs[1], first)):
            assert store.document(run["id"]) == read_report(result.run_dir)
        statuses = [r["status"] for r in store.rows(ids[0])]
    assert statuses == ["ok", "error"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_raw_latency_samples_are_stored_beside_the_row(run_cli, tmp_path):
    result = run_cli("compare", "toy", "--warmup", "0", "--min-time", "0", "--repeat", "2")
    assert result.exit_code == 0, result.output
    trials = read_report(result.run_dir)["rows"][0]["details"]["latency_samples_ms"]
    with sqlite3.connect(tmp_path / "results" / "archbench.sqlite") as raw:
        (stored, details), = raw.execute("SELECT latency_samples_ms, details FROM rows")
    assert json.loads(stored) == trials and len(trials) == 2
    assert "latency_samples_ms" not in json.loads(details)


def test_store_location_options(run_cli, tmp_path, monkeypatch):
    elsewhere = tmp_path / "ci" / "runs.sqlite"
    assert run_cli("compare", "toy", "--no-latency", "--store", str(elsewhere)).exit_code == 0
    monkeypatch.setenv("ARCHBENCH_STORE", str(elsewhere))
    assert run_cli("compare", "toy", "--no-latency").exit_code == 0
    result = run_cli("compare", "toy", "--no-latency", "--no-store")
    assert result.exit_code == 0 and "recorded as run" not in result.stderr
    assert "store" not in read_report(result.run_dir)["environment"]
    assert len(_stored(elsewhere)) == 2
    assert not (tmp_path / "results" / "archbench.sqlite").exists()


@pytest.mark.parametrize("kind", ["folder in the way", "not a database"])
def test_a_store_that_cannot_be_written_costs_one_warning_not_the_run(run_cli, tmp_path,
                                                                       kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder; nor a database")
    store = blocker / "archbench.sqlite" if kind == "folder in the way" else blocker
    result = run_cli("compare", "toy", "--no-latency", "--store", str(store))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "not recorded" in line]
    assert len(warnings) == 1 and str(store) in warnings[0]
    report = read_report(result.run_dir)
    assert report["rows"][0]["status"] == "ok" and "store" not in report["environment"]
    assert blocker.read_text() == "a file, not a folder; nor a database"


def test_an_interrupted_run_is_recorded_incomplete_with_its_finished_rows(run_cli, tmp_path):
    result = run_cli("compare", "toy:tiny", "toy:interrupt", "toy:tiny", "--no-latency")
    assert result.exit_code == 130
    (run,) = _stored(tmp_path / "results" / "archbench.sqlite")
    assert run["complete"] is False and run["row_count"] == 1
    assert read_report(result.run_dir)["environment"]["store"]["run_id"] == run["id"]
    assert f"as incomplete run {run['id']}" in result.stderr


def test_stores_it_cannot_read_are_refused_in_one_line(tmp_path):
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE t (x)")
    from archbench.core.errors import UsageError

    for path, message in ((newer, "written by a newer archbench"),
                          (foreign, "not an archbench results store"),
                          (tmp_path / "missing.sqlite", "no results store at")):
        for create in (True, False):
            if path.name == "missing.sqlite" and create:
                continue
            with pytest.raises(UsageError, match=message):
                Store(path, create=create)
    assert not (tmp_path / "missing.sqlite").exists()


# -- writers that are killed, interrupted, or race each other ---------------------------

WRITER = textwrap.dedent("""
    import json, sys
    from archbench.store import Store
    path, template, prefix, count, rows = sys.argv[1:6]
    document = json.loads(open(template).read())
    row = document["rows"][0]
    row["details"]["latency_samples_ms"] = [[float(i) for i in range(500)]] * 4
    for n in range(int(count)):
        document["rows"] = [dict(row, model=f"toy:{n}-{k}") for k in range(int(rows) + n)]
        with Store(path) as store:
            store.record(f"{prefix}-{n:04d}", document, complete=True)
        print(n, flush=True)
""")


def _writer(path: Path, template: Path, prefix: str, count: int, rows: int
            ) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(template), prefix,
                             str(count), str(rows)], stdout=subprocess.PIPE, text=True)


@pytest.fixture
def template(run_cli, tmp_path) -> Path:
    """A real run's report.json."""
    result = run_cli("compare", "toy", "--no-latency", "--no-store")
    return result.run_dir / "report.json"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_a_writer_killed_while_recording_leaves_only_whole_runs(tmp_path, template, signum):
    path = tmp_path / "store.sqlite"
    writer = _writer(path, template, "run", 10_000, 200)
    assert writer.stdout.readline().strip() == "0"  # one run is in; more are being written
    time.sleep(0.4)
    writer.send_signal(signum)
    writer.wait(timeout=30)
    assert writer.returncode != 0
    runs = _stored(path)  # integrity check, and every run's row count is its recorded one
    assert len(runs) >= 1
    with Store(path, create=False) as store:
        for run in runs:
            n = int(run["id"].split("-")[1])
            assert run["row_count"] == 200 + n == len(list(store.rows(run["id"])))
    with Store(path) as store:  # and it takes the next run
        store.record("after", json.loads(template.read_text()), complete=True)
        assert store.check() == []


def test_two_processes_recording_at_once_both_land(tmp_path, template):
    path = tmp_path / "fresh" / "store.sqlite"  # both also race to create the schema
    writers = [_writer(path, template, prefix, 15, 50) for prefix in ("a", "b")]
    for writer in writers:
        writer.communicate(timeout=120)
        assert writer.returncode == 0
    runs = _stored(path)
    assert sorted(r["id"] for r in runs) == sorted(f"{p}-{n:04d}" for p in "ab"
                                                   for n in range(15))


@pytest.mark.slow
def test_a_compare_killed_mid_run_leaves_the_store_as_it_was(run_cli, tmp_path):
    out = tmp_path / "results"
    earlier = run_cli("compare", "toy", "--no-latency", out=out)
    assert earlier.exit_code == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "archbench", "compare", "vit:tiny", "--set", "vit.depth=1",
         "--min-time", "3", "--repeat", "3", "--warmup", "1", "--out", str(out)],
        stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "ARCHBENCH_PLUGINS"})
    for line in process.stderr:
        if "trial 1/3 done" in line:
            break
    process.kill()
    process.wait(timeout=30)
    (run,) = _stored(out / "archbench.sqlite")
    assert run["run_dir"] == str(earlier.run_dir) and run["complete"]
    killed = [p for p in out.iterdir() if "vit-tiny" in p.name]
    assert len(killed) == 1 and read_report(killed[0])["rows"] == []


# -- reading: history and report --from-store -------------------------------------------


def test_history_lists_stored_rows_newest_first_and_filters_them(run_cli, tmp_path):
    run_cli("compare", "toy", "--no-latency")
    run_cli("compare", "toy", "vit:tiny", "--set", "vit.depth=1", "--no-latency")
    store = str(tmp_path / "results" / "archbench.sqlite")
    result = run_cli("history", "--store", store)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "created", "model"]
    # run id, date and time, model, ...
    assert [line.split()[3] for line in lines[1:]] == ["toy:tiny", "vit:tiny[depth=1]",
                                                       "toy:tiny"]
    device = _stored(Path(store))[0]["device_names"]
    assert device in lines[1] and "params_m" in lines[0]
    only_vit = run_cli("history", "vit", "--store", store, "--json")
    entries = json.loads(only_vit.stdout)
    assert [e["model"] for e in entries] == ["vit:tiny[depth=1]"]
    assert entries[0]["columns"]["gmacs"] == pytest.approx(0.131709888, rel=1e-9)
    assert run_cli("history", "toy:*", "--device", "cuda", "--store", store).stdout.startswith(
        "(no stored row matches")
    assert len(run_cli("history", "--since", "2000-01-01", "--limit", "1", "--store",
                       store).stdout.splitlines()) == 3  # header, one row, "2 older"
    assert "(no stored row" in run_cli("history", "--since", "2999-01-01", "--store",
                                       store).stdout
    for args, message in ((("--since", "yesterday"), "--since 'yesterday'"),
                          (("--store", str(tmp_path / "none.sqlite")), "no results store")):
        bad = run_cli("history", *args, *([] if "--store" in args else ["--store", store]))
        assert bad.exit_code == 2 and message in bad.stderr
        assert bad.stderr.count("\n") == 1


def test_report_from_store_renders_stored_runs_like_their_folders(run_cli, tmp_path):
    first = run_cli("compare", "toy", "--warmup", "0", "--min-time", "0", "--repeat", "2")
    second = run_cli("compare", "toy", "toy:broken", "--no-latency")
    ids = [read_report(r.run_dir)["environment"]["store"]["run_id"] for r in (first, second)]
    store = str(tmp_path / "results" / "archbench.sqlite")
    from_store = run_cli("report", "--from-store", *ids, "--store", store,
                         "--out", str(tmp_path / "a"))
    from_folders = run_cli("report", str(first.run_dir), str(second.run_dir),
                           "--out", str(tmp_path / "b"))
    assert from_store.exit_code == 0 and from_folders.exit_code == 0, from_store.output
    a, b = (read_report(next((tmp_path / d).iterdir())) for d in "ab")
    assert [r["run"] for r in a["rows"]] == [ids[0], ids[1], ids[1]]
    for row in a["rows"] + b["rows"]:
        row.pop("run")
    assert a["rows"] == b["rows"]
    assert [r["fingerprint"] for r in a["environment"]["runs"]] == [
        r["fingerprint"] for r in b["environment"]["runs"]]
    markdown = (next((tmp_path / "a").iterdir()) / "report.md").read_text()
    assert "not timed together" in markdown and "toy:broken" in markdown
    assert run_cli("report", "--from-store", "latest", "--store", store,
                   "--out", str(tmp_path / "c")).exit_code == 0
    assert [r["run"] for r in read_report(next((tmp_path / "c").iterdir()))["rows"]] == \
        [ids[1], ids[1]]
    bad = run_cli("report", "--from-store", "20000101-000000-abcdef", "--store", store)
    assert bad.exit_code == 2 and "no run '20000101-000000-abcdef'" in bad.stderr
