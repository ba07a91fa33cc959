"""The benchmark module: registry, anchors, error rows, table, JSON (ref2k, quick sizes)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from spu_lite.tools import bench

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(REPO, "..", "shared", "anchors", "README.md")
OP_CASES = ["mul_1M", "matmul_512", "less_1M", "relu_1M", "exp_128k", "reciprocal_128k",
            "sigmoid_128k", "softmax_128x1024"]


def test_registry_has_the_anchor_cases():
    for name in OP_CASES:
        c = bench.CASES[name]
        assert set(c.spu) == {"aby3", "semi2k"}
        assert callable(c.fn) and callable(c.make_inputs)


@pytest.mark.skipif(not os.path.exists(ANCHORS), reason="shared/anchors not present")
def test_spu_figures_match_the_anchors_table():
    text = open(ANCHORS).read()
    for name in OP_CASES:
        key = name.split("_")[0]
        m = re.search(rf"^\| {key}\w*\b[^|]*\| ([0-9.]+) \| ([0-9.]+) \|", text, re.M)
        assert m, name
        assert bench.CASES[name].spu == {"aby3": float(m.group(1)), "semi2k": float(m.group(2))}


def test_input_makers_scale():
    rng = np.random.default_rng(0)
    x, y = bench.CASES["mul_1M"].make_inputs(1.0, rng)
    assert x.shape == y.shape == (1 << 20,) and x.dtype == np.float32
    (x,) = bench.CASES["reciprocal_128k"].make_inputs(bench.QUICK_SCALE, rng)
    assert x.shape == (1 << 13,) and x.min() >= 0.5 and x.max() <= 8.0
    a, b = bench.CASES["matmul_512"].make_inputs(bench.QUICK_SCALE, rng)
    assert a.shape == b.shape == (32, 32)
    (s,) = bench.CASES["softmax_128x1024"].make_inputs(bench.QUICK_SCALE, rng)
    assert s.shape == (8, 1024)


def test_run_case_ref2k_fills_a_row():
    row = bench.run_case(bench.CASES["mul_1M"], "ref2k", repeat=2, quick=True)
    assert row.error is None
    assert row.seconds > 0 and len(row.runs) == 2 and row.plain_seconds > 0
    assert row.ratio_plain == pytest.approx(row.seconds / row.plain_seconds)
    assert row.bytes == 0 and row.rounds == 0          # ref2k does not communicate
    assert row.max_abs_err < 1e-3
    assert row.spu_seconds is None and row.ratio_spu is None   # quick sizes: no SPU ratio
    assert row.watch_ratio is None                             # only with --watch


def test_watch_column_times_calls_with_the_fixed_point_watch():
    row = bench.run_case(bench.CASES["mul_1M"], "aby3", repeat=2, quick=True, watch=True)
    assert row.error is None and len(row.runs) == 2
    assert row.watch_ratio is not None and row.watch_ratio > 0
    assert "watch" in bench.format_table([row]).splitlines()[0]


def test_failing_case_becomes_an_error_row():
    def broken(x):
        raise NotImplementedError("op `frobnicate` is not implemented")

    bench.register_case("broken_test", broken, lambda s, rng: (np.ones(4, np.float32),),
                        default=False)
    try:
        rows = bench.run(["broken_test", "mul_1M"], ["ref2k", "nosuchproto"], repeat=1, quick=True)
    finally:
        bench.CASES.pop("broken_test")
    by = {(r.case, r.protocol): r for r in rows}
    assert "frobnicate" in by["broken_test", "ref2k"].error
    assert "nosuchproto" in by["mul_1M", "nosuchproto"].error
    assert by["mul_1M", "ref2k"].error is None
    table = bench.format_table(rows)
    assert re.search(r"^broken_test\s+ref2k\s+error: .*frobnicate", table, re.M)
    assert "mpc/plain" in table.splitlines()[0]


def test_full_size_row_reports_spu_ratio():
    row = bench.Row("mul_1M", "aby3", seconds=0.5, plain_seconds=0.01, ratio_plain=50.0,
                    spu_seconds=0.385, ratio_spu=0.5 / 0.385, bytes=3_000_000, rounds=2,
                    compile_seconds=0.1, max_abs_err=1e-5)
    line = bench.format_table([row]).splitlines()[2]
    assert "0.385" in line and "1.30" in line and "3.00" in line


def test_json_output(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = bench.main(["--quick", "--protocol", "ref2k", "--cases", "matmul_512", "--repeat", "1",
                     "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["meta"]["quick"] is True
    (row,) = data["rows"]
    assert row["case"] == "matmul_512" and row["protocol"] == "ref2k" and row["error"] is None
    assert "matmul_512" in capsys.readouterr().out


def test_module_entry_point_lists_cases():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "spu_lite.tools.bench", "--list"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in OP_CASES:
        assert name in r.stdout
