"""Every benchmark in one go: ``platestream bench`` / ``python -m platestream.bench``.

Runs each benchmark module's ``run()``, prints one table of figures (each beside the
baseline measured in the same run, as a ratio), writes the raw figures as JSON and the
table as markdown, and with ``update_docs`` puts the table into docs/benchmarks.md between
its markers. A benchmark that cannot run here (no display for napari, say) is listed as
skipped with the reason, never silently left out.
"""

from __future__ import annotations

import importlib
import json
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BEGIN = "<!-- platestream bench: begin -->"
END = "<!-- platestream bench: end -->"


@dataclass(frozen=True)
class Row:
    benchmark: str
    figure: str
    value: str
    baseline: str  # the ratio against the same run's baseline, with the baseline's value
    target: str  # "< 100 ms: met" or ""


def _ms(x: float) -> str:
    return f"{x:.1f} ms"


def planning_rows(f: dict[str, Any]) -> list[Row]:
    b = "layer planning"
    verdict = "met" if f["plan_ms"] < 100 else "MISSED"
    one = "met" if f["one_more_us"] < 50 else "MISSED"
    return [
        Row(
            b,
            f"plan {int(f['items'])} items at once",
            _ms(f["plan_ms"]),
            f"{f['plan_vs_construct']:.2f}x building them ({_ms(f['construct_ms'])})",
            f"< 100 ms: {verdict}",
        ),
        Row(
            b,
            "one more item on a full plate",
            f"{f['one_more_us']:.1f} us",
            f"{f['one_more_us'] / (f['construct_ms'] * 1e3 / f['items']):.1f}x building one",
            f"< 50 us: {one}",
        ),
    ]


def transport_rows(r: dict[str, Any]) -> list[Row]:
    b = "transport"
    rows = []
    for frame, x in r["frames"].items():
        checks = (
            (">= 10 GB/s", x["shm"] >= 10),
            (">= 0.5x plain", x["shm/plain"] >= 0.5),
            (">= 10x fresh", x["shm/fresh"] >= 10),
        )
        shm_verdict = "; ".join(f"{t}: {'met' if ok else 'MISSED'}" for t, ok in checks)
        rows.append(
            Row(
                b,
                f"shared memory, {frame} frames",
                f"{x['shm']:.2f} GB/s",
                f"{x['shm/plain']:.2f}x plain copy ({x['plain']:.1f} GB/s); "
                f"{x['shm/fresh']:.1f}x fresh segment per image ({x['fresh']:.2f} GB/s)",
                shm_verdict,
            )
        )
        rows.append(
            Row(
                b,
                f"shared memory copied out (zero_copy=False), {frame} frames",
                f"{x['shm_copy']:.2f} GB/s",
                f"{x['shm_copy/plain']:.2f}x plain copy",
                "",
            )
        )
        rows.append(
            Row(
                b,
                f"inline over TCP loopback, {frame} frames",
                f"{x['inline']:.2f} GB/s",
                f"{x['inline/zmq']:.2f}x bare libzmq ({x['zmq']:.2f} GB/s)",
                ">= 2 GB/s: " + ("met" if x["inline"] >= 2 else "MISSED"),
            )
        )
    nv = r["save_batch_no_viewer"]
    rows.append(
        Row(
            b,
            "save_batch of 16, live, no viewer",
            f"{nv['median_ms']:.2f} ms median",
            f"max {nv['max_ms']:.2f} ms",
            "< 5 ms: " + ("met" if nv["max_ms"] < 5 else "MISSED"),
        )
    )
    return rows


def pipeline_rows(f: dict[str, Any]) -> list[Row]:
    from .pipeline import rows

    return [
        Row(
            "pipeline overhead", name, value, f"baseline {f['off_s']:.2f} s (streaming off)", target
        )
        for name, value, target in rows(f)[1:]
    ]


def viewer_rows(r: dict[str, Any]) -> list[Row]:
    b = "viewer"
    side, wells = r["plate_side"], r["wells"]
    latency, memory = r["latency_2048"], r["memory"]
    ratio = r["plate_vs_floor"]
    # OpenHCS takes about 9 s for this plate on our 2-core machines; the target is 1/5 of it.
    met = ratio <= 1.2 and r["plate_s"] <= 9.0 / 5
    return [
        Row(b, "start_viewer -> first image shown", f"{r['startup_s']:.2f} s", "", ""),
        Row(
            b,
            f"plate {wells} wells x 4 x 4 of {side}x{side} uint16 into the viewer",
            f"{r['plate_s']:.2f} s",
            f"{ratio:.2f}x napari called directly ({r['floor_s']:.2f} s)",
            "<= 1.2x and <= 1.8 s (OpenHCS ~9 s / 5): " + ("met" if met else "MISSED"),
        ),
        Row(
            b,
            "live 2048x2048 send -> display",
            f"p50 {latency['p50_ms']:.1f} ms",
            f"p99 {latency['p99_ms']:.1f} ms",
            "",
        ),
        Row(
            b,
            "viewer memory over live frames",
            f"{memory['growth_mib']:+.0f} MiB",
            ", ".join(
                f"{k.removeprefix('rss_mib_')}: {v:.0f} MiB"
                for k, v in memory.items()
                if k.startswith("rss")
            ),
            "bounded: " + ("met" if memory["growth_mib"] < 64 else "MISSED"),
        ),
    ]


def plate_scale_rows(r: dict[str, Any]) -> list[Row]:
    b = "plate scale" + (" (large)" if r["large"] else " (small sizes; --large: the issue's)")
    screen, many = r["screen"], r["many"]
    over = screen["peak_rss_mib"] - screen["start_rss_mib"]
    allowed = screen["budget_mib"] + 200
    flat = many["last_vs_first"]
    return [
        Row(
            b,
            f"screen of {screen['images']} images of 1024x1024 into a disk store, sustained",
            f"{screen['mb_per_s']:.0f} MB/s",
            f"{screen['vs_disk']:.2f}x the disk's sequential write ({r['disk_mb_per_s']:.0f} MB/s)",
            ">= 0.5x: " + ("met" if screen["vs_disk"] >= 0.5 else "MISSED"),
        ),
        Row(
            b,
            f"viewer RSS over its start, viewer_memory_mb = {screen['budget_mib']}",
            f"{over:.0f} MiB",
            f"start {screen['start_rss_mib']:.0f} MiB, peak {screen['peak_rss_mib']:.0f} MiB",
            f"<= budget + 200 MiB ({allowed} MiB): " + ("met" if over <= allowed else "MISSED"),
        ),
        Row(b, "platestream open of that run -> layers shown", f"{screen['open_s']:.2f} s", "", ""),
        Row(
            b,
            f"plate of {many['images']} images of 256x256: cost per image, last tenth",
            f"{many['last_tenth_us_per_image']:.0f} us",
            f"{flat:.2f}x the first tenth ({many['first_tenth_us_per_image']:.0f} us)",
            "does not grow (<= 1.2x): " + ("met" if flat <= 1.2 else "MISSED"),
        ),
    ]


BENCHMARKS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "planning": planning_rows,
    "transport": transport_rows,
    "viewer": viewer_rows,
    "pipeline": pipeline_rows,
    "plate_scale": plate_scale_rows,
}


def run_all(
    only: list[str] | None = None, log: Callable[[str], None] = print, large: bool = False
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "benchmarks": {},
        "skipped": {},
    }
    for name in BENCHMARKS:
        if only and name not in only:
            continue
        log(f"running {name} ...")
        started = time.monotonic()
        try:
            module = importlib.import_module(f"platestream.bench.{name}")
            results["benchmarks"][name] = (
                module.run(large=large) if name == "plate_scale" else module.run()
            )
        except Exception as err:  # a benchmark that cannot run here is reported, not hidden
            results["skipped"][name] = f"{type(err).__name__}: {err}"
            log(traceback.format_exc())
        log(f"  {name}: {time.monotonic() - started:.0f} s")
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for name, figures in results["benchmarks"].items():
        out.extend(BENCHMARKS[name](figures))
    return out


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']['platform']}, Python {results['machine']['python']}.",
        "",
        "| benchmark | figure | value | against the baseline of the same run | target |",
        "|---|---|---|---|---|",
    ]
    for r in rows(results):
        lines.append(f"| {r.benchmark} | {r.figure} | {r.value} | {r.baseline} | {r.target} |")
    for name, reason in results["skipped"].items():
        lines.append(f"| {name} | skipped | | {reason} | |")
    return "\n".join(lines) + "\n"


def update_docs(path: Path, table: str) -> None:
    text = path.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n## Latest full run (`platestream bench`)\n\n{block}\n{body}"
    path.write_text(text, encoding="utf-8")


def write(results: dict[str, Any], json_path: Path, md_path: Path) -> str:
    table = markdown(results)
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(table, encoding="utf-8")
    return table
