"""Measured figures reach the docs only through the generator: the commands' JSON
rewrites a dated, marked block of the page and nothing else."""
import datetime
import json
import subprocess
import sys

from spu_lite.tools import docs_figures


def _page(tmp_path, name):
    page = tmp_path / "page.md"
    page.write_text(f"intro\n\n{docs_figures.begin_marker(name)}\nold\n"
                    f"{docs_figures.end_marker(name)}\n\noutro\n")
    return page


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], check=True, capture_output=True, text=True)


def test_bench_json_rewrites_the_block(tmp_path):
    out = tmp_path / "bench.json"
    _run("spu_lite", "bench", "--quick", "--protocol", "ref2k", "--cases", "mul_1M",
         "--repeat", "1", "--json", str(out))
    page = _page(tmp_path, "bench")
    _run("spu_lite.tools.docs_figures", "bench", str(out), "--page", str(page))
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert f"Measured {datetime.date.today().isoformat()}" in text
    assert "| mul_1M | " in text and "| case | ref2k s | SPU ref2k s | ratio |" in text


def test_precision_json_rewrites_the_block(tmp_path):
    res = _run("spu_lite", "precision", "--protocol", "ref2k", "--ops", "exp", "--points", "11",
               "--json")
    src = tmp_path / "precision.jsonl"
    src.write_text(res.stdout)
    row = json.loads(res.stdout.splitlines()[0])
    page = _page(tmp_path, "precision")
    _run("spu_lite.tools.docs_figures", "precision", str(src), "--page", str(page),
         "--date", "2030-01-02", "--protocol", "ref2k")
    text = page.read_text()
    assert "Measured 2030-01-02, ref2k" in text
    assert f"| exp | [-8, 4] | {row['input_frac']} | {row['max_abs']:.1e} |" in text


def test_docs_pages_hold_their_generated_blocks():
    for kind, page in docs_figures.PAGES.items():   # bench and training share a page
        text = page.read_text()
        block = text.split(docs_figures.begin_marker(kind))[1].split(docs_figures.end_marker(kind))[0]
        assert block.strip().startswith("Measured "), page


def test_a_page_without_markers_is_refused():
    try:
        docs_figures.replace_block("no markers here", "bench", "x")
    except ValueError as e:
        assert "bench" in str(e)
    else:
        raise AssertionError("replace_block accepted a page without markers")


def test_training_json_rewrites_the_block(tmp_path):
    """The bench-train block from the JSON bench-train writes (rows as `run` returns
    them; the training itself is the slow e2e tests' business)."""
    data = {"meta": {"time": "2030-01-02T03:04:05", "repeat": 3, "cpus": 2},
            "rows": [{"case": "breast_cancer", "protocol": "aby3", "seconds": 7.04,
                      "auc_mpc": 0.979, "auc_plain": 0.979, "spu_seconds": 30.0,
                      "ratio_to_spu": 7.04 / 30.0},
                     {"case": "mnist_step", "protocol": "semi2k", "seconds": 0.085,
                      "bytes": 9.0e6, "rounds": 47, "spu_seconds": 0.51,
                      "ratio_to_spu": 0.085 / 0.51}]}
    src = tmp_path / "training.json"
    src.write_text(json.dumps(data))
    page = _page(tmp_path, "training")
    _run("spu_lite.tools.docs_figures", "training", str(src), "--page", str(page))
    text = page.read_text()
    assert "Measured 2030-01-02" in text
    assert "| aby3 | 7.040 | 30.00 | 0.23 | test AUC 0.9790, plaintext 0.9790 |" in text
    assert "| semi2k | 0.085 | 0.51 | 0.17 | 9.0 MB, 47 rounds (busiest party) |" in text
