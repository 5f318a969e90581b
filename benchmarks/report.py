"""The table benchmarks/run prints, from the samples it took, and the comparison with a baseline.

python3 report.py SAMPLES.json --json FIGURES.json [--compare BASELINE.json]

SAMPLES.json holds every round of every measure (akvfs and its baseline side by side), akvfs's
CPU time per operation, callgrind's instruction counts and resident memory. FIGURES.json gets
the figures derived from them (medians, ratios and their spread), the file benchmarks/baseline.json
is a copy of. With --compare, every figure that moved by more than 10% from the baseline is named.
"""
import json
import statistics
import sys

THRESHOLD = 0.10


def figures(samples):
    """Name -> (value, unit, lower is better), plus the spread of each ratio for the table."""
    out, spreads = {}, {}
    for key, name in (("warm_read_ns", "warm read"), ("cold_read_ns", "cold read"), ("ls_ns", "ls")):
        akvfs, baseline = samples[key]
        ratios = sorted(a / b for a, b in zip(akvfs, baseline))
        out[f"{name}: akvfs (ns)"] = statistics.median(akvfs)
        out[f"{name}: baseline (ns)"] = statistics.median(baseline)
        out[f"{name}: ratio"] = statistics.median(akvfs) / statistics.median(baseline)
        spreads[name] = (ratios[0], ratios[-1])
    cpu = samples["cpu_ns"]
    out["CPU per warm read (ns)"] = cpu["warm read"]
    out["CPU per cold read (ns)"] = statistics.median(cpu["cold read"])
    out["CPU per ls (ns)"] = statistics.median(cpu["ls"])
    for name, count in samples["instructions"].items():
        out[f"instructions: {name}"] = count
    for name, count in samples["requests"].items():
        out[f"requests: {name}"] = count
    out["resident idle (KiB)"] = samples["resident_kib"]["idle"]
    out["resident full (KiB)"] = samples["resident_kib"]["full"]
    return out, spreads


def table(samples, out, spreads):
    rows = [
        "| Measure | akvfs | Baseline | Ratio (lowest–highest round) | Target |",
        "|---|---|---|---|---|",
    ]

    def timed(title, name, unit, scale, baseline, target):
        low, high = spreads[name]
        rows.append(
            f"| {title} | {out[f'{name}: akvfs (ns)'] / scale:,.1f} {unit} | "
            f"{out[f'{name}: baseline (ns)'] / scale:,.1f} {unit} ({baseline}) | "
            f"{out[f'{name}: ratio']:.2f}x ({low:.2f}–{high:.2f}) | {target} |")

    secrets = samples["secrets"]
    timed("Warm read (open, read, close of a 1 KiB secret)", "warm read", "µs", 1e3, "same file on tmpfs", "≤ 1.2x")
    timed("Cold read of an uncached secret (median of 60)", "cold read", "µs", 1e3, "one keep-alive HTTPS GET",
          "≤ 1.1x")
    timed(f"`ls` of {secrets:,} secrets", "ls", "ms", 1e6, "plain client paging", "≤ 1.1x")
    requests = samples["requests"]
    rows.append(f"| List requests for that `ls` | {requests['ls']} | {requests['pages']} pages | | one per page |")
    rows.append(f"| Upstream GETs for 100 concurrent readers of one secret | {requests['concurrent']} | | | 1 |")
    rows.append(f"| Upstream GETs for steady reading during 10 TTLs | {requests['steady']} | | | 10 |")
    resident = samples["resident_kib"]
    # The targets are for akvfs as it ships (benchmarks/memory); this run's akvfs is the plain
    # release build, with Swift's runtime as shared libraries, kept to see it move.
    rows.append(f"| Resident memory, idle (`swift build -c release`) | {resident['idle'] / 1024:.1f} MiB | | | "
                "≤ 16 MiB as shipped: `benchmarks/memory` |")
    rows.append(f"| Resident memory, {secrets:,} cached 1 KiB secrets (`swift build -c release`) | "
                f"{resident['full'] / 1024:.1f} MiB | | | ≤ 48 MiB as shipped |")
    rows += ["", "| akvfs's own cost per operation | CPU time (user + system) | Instructions (callgrind) |", "|---|---|---|"]
    rows.append(f"| Warm read, answered from the kernel's page cache | {out['CPU per warm read (ns)'] / 1e3:.2f} µs | |")
    for name, count in samples["instructions"].items():
        cpu = f"{out['CPU per cold read (ns)'] / 1e3:.0f} µs" if name.startswith("cold read") else ""
        rows.append(f"| {name[0].upper() + name[1:]} | {cpu} | {count:,} |")
    rows.append(f"| `ls` of {secrets:,} secrets | {out['CPU per ls (ns)'] / 1e6:.0f} ms | |")
    rows += ["", f"Medians of {samples['rounds']} rounds, akvfs and its baseline alternating. {samples['cores']} cores, "
             f"Linux {samples['kernel']}, release builds, emulator on loopback."]
    return "\n".join(rows)


def compare(baseline, out):
    """Lines naming each figure that moved by more than THRESHOLD; times and ratios are noisy,
    instruction and request counts are not."""
    lines = []
    for name, value in out.items():
        before = baseline.get(name)
        if before is None:
            lines.append(f"  new: {name} = {value:,.2f} (not in the baseline)")
            continue
        if before == 0:
            moved = value != 0
            change = float("inf") if moved else 0.0
        else:
            change = (value - before) / before
            moved = abs(change) > THRESHOLD
        if moved:
            direction = "worse" if change > 0 else "better"
            lines.append(f"  {direction}: {name}: {before:,.2f} -> {value:,.2f} ({change:+.0%})")
    for name in baseline.keys() - out.keys():
        lines.append(f"  gone: {name} (in the baseline, not measured now)")
    return lines


def main():
    arguments = sys.argv[1:]
    samples = json.load(open(arguments[0]))
    out, spreads = figures(samples)
    print(table(samples, out, spreads))
    if "--json" in arguments:
        json.dump(out, open(arguments[arguments.index("--json") + 1], "w"), indent=1, sort_keys=True)
    if "--compare" in arguments:
        path = arguments[arguments.index("--compare") + 1]
        lines = compare(json.load(open(path)), out)
        print()
        if lines:
            print(f"Figures that moved by more than {THRESHOLD:.0%} from {path} (higher is worse for every figure):")
            print("\n".join(lines))
        else:
            print(f"No figure moved by more than {THRESHOLD:.0%} from {path}.")


main()
