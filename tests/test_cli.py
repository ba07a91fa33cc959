"""The `spu-lite` command line, run as a subprocess (`python -m spu_lite ...`)."""
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SPU_LITE_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "spu_lite", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def protocol_available(name):
    from spu_lite.runtime.protocols import get_protocol
    try:
        get_protocol(name)
        return True
    except ValueError:
        return False


@pytest.fixture
def module(tmp_path):
    src = textwrap.dedent("""\
        import jax
        import jax.numpy as jnp


        def layer(x, w):
            return jax.nn.relu(x @ w)


        def scaled(x, k):
            return x * k
        """)
    path = tmp_path / "model.py"
    path.write_text(src)
    return path


def test_help_of_every_command(capsys):
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    for cmd in ("compile", "cost", "bench", "precision", "demo"):
        assert cmd in r.stdout
    # every subcommand's help, in-process (the same parser) to keep the suite fast
    from spu_lite.tools.cli import main
    for cmd in ("compile", "cost", "bench", "demo", "precision"):
        assert main([cmd, "--help"]) == 0, cmd
        assert "usage: spu-lite" in capsys.readouterr().out


def test_help_of_a_subcommand_as_subprocess():
    r = run_cli("compile", "--help")
    assert r.returncode == 0 and "--arg" in r.stdout


def test_subcommand_help_lists_flags(capsys):
    from spu_lite.tools.cli import main
    assert main(["compile", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--arg", "--public", "--static", "--protocol", "--field", "--fxp-bits", "--no-opt"):
        assert flag in out
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--protocol", "--cases", "--repeat", "--quick", "--json"):
        assert flag in out


def test_no_command_is_usage_error():
    from spu_lite.tools.cli import main
    assert main([]) == 2


def test_compile_prints_ir(module):
    r = run_cli("compile", f"{module}:layer", "--arg", "f32[8,4]", "--arg", "f32[4,3]")
    assert r.returncode == 0, r.stderr
    assert "dot_trunc(" in r.stdout                 # x @ w fused with its truncation
    assert "secret<fxp<64,18>>" in r.stdout
    assert r.stdout.startswith("func @layer(")


def test_compile_options_in_process(module, capsys):
    from spu_lite.tools.cli import main
    rc = main(["compile", f"{module}:layer", "--arg", "f32[8,4]", "--arg", "f32[4,3]",
               "--public", "1", "--field", "32", "--fxp-bits", "12", "--no-opt"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "public<fxp<32,12>>[4,3]" in out and "secret<fxp<32,12>>[8,4]" in out
    # the printed IR parses back (it is the format parties receive)
    from spu_lite.compiler.ir import parse_program
    assert parse_program(out).text == out
    # static and public by name; integer inputs
    assert main(["compile", f"{module}:scaled", "--arg", "i32[5]", "--static", "k=3"]) == 0
    out = capsys.readouterr().out
    assert "secret<int<64>>[5]" in out
    assert main(["compile", f"{module}:scaled", "--arg", "f32[5]", "--arg", "f32[]",
                 "--public", "k"]) == 0
    assert "public<fxp<64,18>>[]" in capsys.readouterr().out


def test_cost_counts_ops(module, capsys):
    from spu_lite.tools.cli import main
    assert main(["cost", f"{module}:layer", "--arg", "f32[8,4]", "--arg", "f32[4,3]"]) == 0
    out = capsys.readouterr().out
    lines = {l.split()[0] + " " + l.split()[1]: l for l in out.splitlines()[2:] if len(l.split()) >= 3}
    assert "dot_trunc secret" in lines and lines["dot_trunc secret"].split()[2] == "1"
    assert "total secret" in out
    assert "# communication under aby3" in out and "total (busiest party)" in out


def test_cost_dry_run_is_what_a_real_run_sends():
    """The protocols are data-oblivious: the dry run on random inputs sends exactly the
    bytes, in exactly the rounds, of a run on real data (per party, per op)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import spu_lite as spu
    from spu_lite.tools.cost import dry_run

    def fn(x, w):
        h = jnp.maximum(x @ w, 0.0)
        return jax.nn.softmax(h, axis=-1), jax.lax.fori_loop(0, 3, lambda i, v: v * 0.5 + v * v, h)

    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((16, 12)), rng.standard_normal((12, 6))
    for protocol in ("aby3", "semi2k"):
        f = spu.jit(fn, protocol=protocol)
        f(x, w)
        real = f.cluster.party_profiles
        report = dry_run(f.lower(x, w).program, protocol)
        assert report.party_bytes == [p.total.bytes for p in real]
        assert report.rounds == max(p.total.rounds for p in real)
        assert {n: (s.bytes, s.rounds) for n, s in report.per_op.ops.items()} == \
            {n: (s.bytes, s.rounds) for n, s in spu.profile().ops.items()}
        # loop bodies are counted once per iteration, the loop op itself adds nothing
        assert report.per_op.ops["for"].bytes == 0


def test_unsupported_primitive_names_primitive_and_line(tmp_path):
    from spu_lite.compiler.lower import RULES
    candidates = {
        "nextafter": "jax.lax.nextafter(y, y + 1.0)",
        "cumprod": "jax.lax.cumprod(y)",
        "sort": "jax.lax.sort(y)",
    }
    name = next((n for n in candidates if n not in RULES), None)
    if name is None:
        pytest.skip("every candidate primitive has a lowering rule now")
    path = tmp_path / "unsup.py"
    path.write_text("import jax\n\n\ndef f(x):\n    y = x * 2.0\n"
                    f"    return {candidates[name]}\n")
    r = run_cli("compile", f"{path}:f", "--arg", "f32[8]")
    assert r.returncode == 1
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err          # one line, no traceback
    assert "Traceback" not in err
    assert f"`{name}`" in err
    assert "unsup.py:6" in err


def test_bad_arg_spec_is_usage_error(module):
    r = run_cli("compile", f"{module}:layer", "--arg", "f32[8,4", "--arg", "f32[4,3]")
    assert r.returncode == 2
    assert "invalid spec 'f32[8,4'" in r.stderr and "DTYPE[DIMS]" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("spec", ["f16[2]", "f32", "f32[a]", "f32[2,,3]", "[2]"])
def test_bad_arg_specs_in_process(spec, module, capsys):
    from spu_lite.tools.cli import main
    assert main(["compile", f"{module}:layer", "--arg", spec]) == 2
    assert "invalid spec" in capsys.readouterr().err


def test_arg_spec_grammar():
    import numpy as np
    from spu_lite.tools.cli import parse_arg_spec
    assert parse_arg_spec("f32[8,4]") == (np.dtype(np.float32), (8, 4))
    assert parse_arg_spec("i32[]") == (np.dtype(np.int32), ())
    assert parse_arg_spec("bool[ 3 ]") == (np.dtype(np.bool_), (3,))
    assert parse_arg_spec("i64[2,3,4]") == (np.dtype(np.int64), (2, 3, 4))


@pytest.mark.parametrize("args, message", [
    (["MISSING.py:layer", "--arg", "f32[2]"], "no such file"),
    (["{m}:nope", "--arg", "f32[2]"], "has no function 'nope'"),
    (["{m}:layer", "--arg", "f32[8,4]"], "needs an --arg"),
    (["{m}:layer", "--arg", "f32[8,4]", "--arg", "f32[3,3]"], "tracing layer failed"),
    (["{m}:layer", "--arg", "f32[8,4]", "--arg", "f32[4,3]", "--static", "q=1"], "no parameter 'q'"),
    (["{m}:layer", "--arg", "f32[8,4]", "--arg", "f32[4,3]", "--public", "5"], "--public 5"),
])
def test_compile_errors_are_one_line(args, message, module, capsys):
    from spu_lite.tools.cli import main
    args = [a.replace("{m}", str(module)) for a in args]
    assert main(["compile", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("spu-lite compile: error:") and message in err, err
    assert len(err.splitlines()) == 1


def test_bad_target_is_usage_error(module, capsys):
    from spu_lite.tools.cli import main
    assert main(["compile", str(module), "--arg", "f32[2]"]) == 2
    assert "FILE.py:FUNC" in capsys.readouterr().err


def test_import_error_of_user_file(tmp_path, capsys):
    from spu_lite.tools.cli import main
    p = tmp_path / "broken.py"
    p.write_text("import jax\nraise RuntimeError('boom')\n")
    assert main(["compile", f"{p}:f", "--arg", "f32[2]"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "broken.py:2" in err


def test_bench_quick_ref2k():
    r = run_cli("bench", "--quick", "--protocol", "ref2k", "--cases", "mul_1M", "less_1M", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "mul_1M" in out and "less_1M" in out
    assert "mpc/plain" in out and "ours/spu" in out
    rows = [l for l in out.splitlines() if l.startswith(("mul_1M", "less_1M"))]
    assert len(rows) == 2 and all("error" not in l for l in rows), out


def test_bench_unknown_case_is_usage_error(capsys):
    from spu_lite.tools.cli import main
    assert main(["bench", "--cases", "nope_1M", "--protocol", "ref2k"]) == 2
    assert "unknown case" in capsys.readouterr().err


@pytest.mark.parametrize("protocol", ["aby3", "semi2k"])
def test_bench_quick_mpc_protocol(protocol):
    if not protocol_available(protocol):
        pytest.skip(f"{protocol} is not implemented yet")
    r = run_cli("bench", "--quick", "--protocol", protocol, "--cases", "mul_1M", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    row = [l for l in r.stdout.splitlines() if l.startswith("mul_1M")]
    assert row and "error" not in row[0], r.stdout


def test_demo_ref2k():
    r = run_cli("demo", "--protocol", "ref2k")
    assert r.returncode == 0, r.stderr
    assert "max abs error" in r.stdout and "OK" in r.stdout
    assert "total" in r.stdout  # the profile table


def test_demo_unknown_protocol_is_usage_error(capsys):
    from spu_lite.tools.cli import main
    assert main(["demo", "--protocol", "bogus"]) == 2


def test_precision_delegates_or_says_missing(capsys, monkeypatch):
    import importlib
    import types

    from spu_lite.tools import cli
    try:
        importlib.import_module("spu_lite.tools.precision")
        have = True
    except ModuleNotFoundError:
        have = False
    if not have:
        assert cli.main(["precision"]) == 1
        assert "spu_lite.tools.precision" in capsys.readouterr().err
        assert cli.main(["precision", "--help"]) == 0
    # delegation: argv is passed through and the return code comes back
    seen = {}
    fake = types.ModuleType("spu_lite.tools.precision")
    fake.main = lambda argv: seen.setdefault("argv", argv) and 0
    monkeypatch.setitem(sys.modules, "spu_lite.tools.precision", fake)
    assert cli.main(["precision", "--protocol", "aby3"]) == 0
    assert seen["argv"] == ["--protocol", "aby3"]
    fake.main = lambda argv: 3
    assert cli.main(["precision"]) == 3
