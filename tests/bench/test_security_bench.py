"""The security cost benchmark's parts run (tiny sizes: a smoke test, not a timing)."""

from __future__ import annotations

from platestream.bench import security as bench


def test_the_security_benchmark_compares_curve_and_pread_with_their_plain_forms() -> None:
    results = bench.run(quick=True)
    sockets, named = results["sockets"], results["named_pool"]
    for name in ("handshake_ms", "request_us", "batch_per_s", "inline_gbs"):
        assert sockets[f"{name}_plain"] > 0 and sockets[f"{name}_curve"] > 0
        ratio = sockets[f"{name}_curve"] / sockets[f"{name}_plain"]
        assert abs(sockets[f"{name}_ratio"] - ratio) < 1e-9
    assert named["map_gbs_1"] > 0 and named["pread_gbs_1"] > 0
    text = bench.render(results)
    assert "CURVE/plain" in text and "1 MiB planes" in text
