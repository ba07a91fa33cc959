"""bench_net: workloads on emulated links next to the cost model's prediction."""
from __future__ import annotations

import pytest

from spu_lite.runtime.link import LinkModel
from spu_lite.tools import bench_net


def test_prediction_is_compute_plus_latency_per_round_plus_bytes_over_bandwidth():
    wan = LinkModel.parse("wan")
    assert bench_net.predict(0.5, 10, 1_000_000, "aby3", wan) == pytest.approx(
        0.5 + 10 * 0.01 + 8e6 / 100e6)
    assert bench_net.predict(0.5, 10, 1_000_000, "semi2k", wan) == pytest.approx(
        0.5 + 10 * 0.02 + 8e6 / 100e6)
    assert bench_net.predict(0.5, 10, 1_000_000, "aby3", None) == 0.5


def test_per_token_rows_are_differences_of_three_tokens_and_the_first():
    rows = [dict(protocol="aby3", link="wan", case="gpt2_tiny first token", measured_s=1.0,
                 predicted_s=1.2, error=0.2, rounds=100, bytes=1000),
            dict(protocol="aby3", link="wan", case="gpt2_tiny 3 tokens", measured_s=2.0,
                 predicted_s=2.0, error=0.0, rounds=300, bytes=3000)]
    out = bench_net._per_token(rows)
    tok = out[1]
    assert tok["case"] == "gpt2_tiny per token" and tok["measured_s"] == pytest.approx(0.5)
    assert tok["predicted_s"] == pytest.approx(0.4) and tok["rounds"] == 100
    assert tok["error"] == pytest.approx(-0.2)


@pytest.mark.slow
def test_op_cases_on_emulated_in_process_links_take_at_least_their_latency():
    rows = bench_net.run_workloads("aby3", ["ops"], ["rtt=4ms"],
                                   bench_net.in_process_link("aby3"), log=lambda m: None)
    emulated = [r for r in rows if r["link"] == "rtt=4ms"]
    assert len(emulated) == 4 and len(rows) == 8
    for r in emulated:
        assert r["rounds"] >= 2 and r["measured_s"] >= r["rounds"] * 0.002
        base = next(b for b in rows if b["link"] == "none" and b["case"] == r["case"])
        assert r["predicted_s"] == pytest.approx(base["measured_s"] + r["rounds"] * 0.002)
