"""The table ``make bench`` prints: each target's share of direct and of the bare proxy."""

from __future__ import annotations

from typing import Any


def _bare_for(name: str) -> str:
    return "bare-uvicorn" if name.endswith("uvicorn") else "bare-daphne"


def print_table(results: dict[str, Any]) -> None:
    runs = results.get("runs", {})
    print(f"\n{results['rounds']} interleaved rounds x {results['requests']} tools/call per run; medians")
    print("cpu us: CPU time of the target's own processes per request (for direct, the upstream's)\n")
    header = (
        f"{'target':<24}{'answer':<6}{'conc':>5}{'req/s':>9}{'p50':>8}{'p90':>8}{'p99':>8}"
        f"{'%direct':>9}{'%bare':>7}{'+p50 ms':>9}{'bare+p50':>9}{'cpu us':>8}{'xbare':>7}"
    )
    print(header)
    print("-" * len(header))
    for key, run in runs.items():
        name, mode, conc = key.split("/")
        direct = runs.get(f"direct/{mode}/{conc}", run)
        bare = runs.get(f"{_bare_for(name)}/{mode}/{conc}")
        share_bare = f"{run['rps'] / bare['rps'] * 100:.0f}" if bare and name.startswith("gatehouse") else ""
        bare_added = (
            f"{bare['p50_ms'] - direct['p50_ms']:.2f}" if bare and name.startswith("gatehouse") else ""
        )
        cpu = run.get("cpu_us")
        cpu_bare = (
            f"{cpu / bare['cpu_us']:.2f}"
            if cpu and bare and bare.get("cpu_us") and name.startswith("gatehouse")
            else ""
        )
        run["share_of_direct"] = round(run["rps"] / direct["rps"], 3)
        if bare and name.startswith("gatehouse"):
            run["share_of_bare"] = round(run["rps"] / bare["rps"], 3)
        run["added_p50_ms"] = round(run["p50_ms"] - direct["p50_ms"], 2)
        print(
            f"{name:<24}{mode:<6}{conc[1:]:>5}{run['rps']:>9.0f}{run['p50_ms']:>8.2f}{run['p90_ms']:>8.2f}"
            f"{run['p99_ms']:>8.2f}{run['rps'] / direct['rps'] * 100:>8.0f}%{share_bare:>7}"
            f"{run['added_p50_ms']:>9.2f}{bare_added:>9}{cpu if cpu is not None else '':>8}{cpu_bare:>7}"
        )
    streams = results.get("streams", {})
    if streams:
        direct = streams.get("direct", {})
        print(
            f"\n{'GET stream':<24}{'first event ms':>16}{'+ vs direct':>13}{'event delay p50 ms':>20}"
            f"{'+ vs direct':>13}"
        )
        for name, found in streams.items():
            print(
                f"{name:<24}{found['first_event_ms']:>16.2f}"
                f"{found['first_event_ms'] - direct.get('first_event_ms', 0):>13.2f}"
                f"{found['event_delay_p50_ms']:>20.3f}"
                f"{found['event_delay_p50_ms'] - direct.get('event_delay_p50_ms', 0):>13.3f}"
            )
    for name, found in results.get("idle_streams", {}).items():
        per = ", ".join(f"{k} streams: {v['kb_per_stream']} KB each" for k, v in found.items() if k.isdigit())
        failed = f"; FAILED {found['failed']}" if "failed" in found else ""
        print(f"\nidle streams, {name}: RSS {found['rss_before_kb']} KB before; {per}{failed}")
    if "revocation" in results:
        r = results["revocation"]
        print(
            f"\nrevocation across two instances ({r['tokens']} tokens): the revoking instance admitted "
            f"{r['revoking_instance_admitted_after_revoke']} requests after its revoke; the other refused in "
            f"p50 {r['to_401_p50_ms']} ms / p99 {r['to_401_p99_ms']} ms and closed the stream in "
            f"p50 {r['to_stream_close_p50_ms']} ms / p99 {r['to_stream_close_p99_ms']} ms"
        )
    for what, why in results.get("skipped", {}).items():
        print(f"skipped {what}: {why}")
