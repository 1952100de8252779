#!/usr/bin/env python3
"""Summarises a loadtest/bench.sh output directory as Markdown tables.

Reads floor.json and the loadtest JSON reports (fanout-*, capacity-N-k,
storm-*, churn-*) and prints the floor, fan-out cost and cost ÷ floor per
run, the capacity sweep (median of the runs per point), the join storm,
churn, and RSS per viewer. Usage: bench_summary.py OUT_DIR
"""
import json
import pathlib
import statistics
import sys

# What the load tool's str0m viewers negotiate with the str0m server: the
# client offers AEAD_AES_256_GCM first (see loadtest/src/floor.rs).
PROFILE = "AEAD_AES_256_GCM"
MAX_LOSS = 0.01
MAX_P99_US = 50_000


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fmt(v, digits=1, suffix=""):
    return "n/a" if v is None else f"{v:.{digits}f}{suffix}"


def meets_bar(r):
    p99 = (r["latency_us"] or {}).get("p99")
    return (r["joins"]["failed"] == 0 and r["packets"]["loss"] < MAX_LOSS
            and p99 is not None and p99 < MAX_P99_US)


def row(name, r, floor_us):
    s, t = r["server"], r["tool"]
    lat, ttff = r["latency_us"] or {}, r["ttff_ms"] or {}
    us = s["us_per_forwarded_packet"]
    cpu = s["worker_cpu_cores"]
    out = s["datagrams_out_per_s"]
    us_dgram = cpu * 1e6 / out if cpu and out else None
    ratio = us / floor_us if us and floor_us else None
    rss = s.get("rss_per_viewer_bytes")
    tool = f"{fmt((t['cpu_cores'] or 0) * 100, 0)}%"
    if t.get("socket_drops"):
        tool += f", {t['socket_drops']} own drops"
    if t.get("socket_backlog"):
        b = t["socket_backlog"]
        tool += f", reads {b['delay_ms']:.1f} ms behind (max {b.get('max_delay_ms', 0):.0f})"
    if t["saturated"]:
        tool += " TOOL-LIMITED"
    return (f"| {name} | {r['viewers']} | {fmt(s['forwarded_per_s'], 0)} | {fmt(out, 0)} "
            f"| {fmt((cpu or 0) * 100, 0)}% | {fmt(us, 2)} | {fmt(us_dgram, 2)} | {fmt(ratio, 1, '×')} "
            f"| {r['packets']['loss'] * 100:.3f}% | {fmt(lat.get('p50', 0) / 1000)} / {fmt(lat.get('p99', 0) / 1000)} ms "
            f"| {ttff.get('p50', 'n/a')} / {ttff.get('p99', 'n/a')} ms | {r['joins']['failed']} "
            f"| {fmt(rss / 1000 if rss is not None else None, 0)} KB | {tool} "
            f"| {'PASS' if r['pass'] else 'FAIL'} |")


HEADER = ("| run | viewers | fwd pkt/s | datagrams out/s | worker CPU | µs/fwd pkt | µs/datagram | cost ÷ floor "
          "| loss | latency p50 / p99 | TTFF p50 / p99 | failed joins | RSS/viewer | tool | verdict |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def main(out):
    out = pathlib.Path(out)
    print(f"\nresults in {out} (commit {(out / 'commit').read_text().strip() if (out / 'commit').exists() else '?'})\n")
    floor = load(out / "floor.json")
    floor_us = None
    if floor:
        floor_us = floor["floor_us"][PROFILE]
        ns = floor["srtp_protect_ns"]
        print("### Floor (per 1,200-byte packet, this machine, same run)\n")
        print("| part | ns |\n|---|---|")
        for k, v in ns.items():
            print(f"| SRTP protect {k} | {v:.0f} |")
        print(f"| sendmmsg slot (batch {floor['sendmmsg_batch']}, loopback) | {floor['sendmmsg_slot_ns']:.0f} |")
        print(f"| sendto, one datagram (for comparison) | {floor['sendto_ns']:.0f} |")
        for k, v in floor["floor_us"].items():
            print(f"| **floor {k}** = SRTP + sendmmsg slot | {v * 1000:.0f} |")
        print(f"\ncost ÷ floor below uses {PROFILE} ({floor_us:.3f} µs): what the load tool's viewers negotiate.\n")

    reports = {p.stem: load(p) for p in out.glob("*.json") if p.name != "floor.json"}
    reports = {k: v for k, v in reports.items() if v}

    print("### Fan-out cost\n")
    print(HEADER)
    for name in sorted((k for k in reports if k.startswith("fanout-")),
                       key=lambda k: (("mixed" in k), reports[k]["viewers"])):
        print(row(name, reports[name], floor_us))

    print("\n### Capacity sweep (top layer, one worker on one core; bar: 0 failed joins, loss < 1%, p99 < 50 ms)\n")
    print("| viewers | runs meeting the bar | median loss | median p99 latency | median µs/fwd pkt | median worker CPU | tool limited |")
    print("|---|---|---|---|---|---|---|")
    points = sorted({int(k.split("-")[1]) for k in reports if k.startswith("capacity-")})
    capacity, capacity_us = None, None
    for n in points:
        runs = [reports[k] for k in reports if k.startswith(f"capacity-{n}-")]
        passed = sum(meets_bar(r) for r in runs)
        med = lambda f: statistics.median([f(r) for r in runs])  # noqa: E731
        loss = med(lambda r: r["packets"]["loss"])
        p99 = med(lambda r: (r["latency_us"] or {}).get("p99", float("inf")))
        us_values = [r["server"]["us_per_forwarded_packet"] for r in runs if r["server"]["us_per_forwarded_packet"]]
        us = statistics.median(us_values) if us_values else None
        cpu = med(lambda r: r["server"]["worker_cpu_cores"] or 0)
        limited = sum(r["tool"]["saturated"] for r in runs)
        print(f"| {n} | {passed}/{len(runs)} | {loss * 100:.3f}% | {p99 / 1000:.1f} ms | {fmt(us, 2)} "
              f"| {cpu * 100:.0f}% | {limited}/{len(runs)} |")
        if passed * 2 > len(runs):
            capacity, capacity_us = n, us
    print(f"\n**Capacity: {capacity if capacity else 'below the first point'} top-layer viewers on one core** "
          f"(the highest point where most of the 3 runs met the bar; points are coarse).")
    if capacity_us and floor_us:
        print(f"\n**Headline: {capacity_us:.2f} µs per forwarded packet at the capacity point ÷ floor "
              f"{floor_us:.3f} µs ({PROFILE}) = {capacity_us / floor_us:.1f}×**")

    for prefix, title in (("storm-", "Join storm (300 viewers within 1 s)"), ("churn-", "Churn (5% every 10 s)")):
        names = [k for k in reports if k.startswith(prefix)]
        if names:
            print(f"\n### {title}\n")
            print(HEADER)
            for name in names:
                print(row(name, reports[name], floor_us))


if __name__ == "__main__":
    main(sys.argv[1])
