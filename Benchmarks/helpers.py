#!/usr/bin/env python3
"""Helpers for Benchmarks/run (standard library only).

  helpers.py snapshot PID                       per-thread context switches and CPU of PID, as JSON
  helpers.py idle-diff BEFORE AFTER SECONDS     wakeups and CPU between two snapshots, as JSON
  helpers.py notify-listen PATH LOG             a stand-in for systemd's NOTIFY_SOCKET: logs each datagram
  helpers.py summarize WORKDIR OUT.md           the table (stdout and OUT.md) from the run's raw results
"""

import json
import os
import socket
import statistics
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def read_status(path):
    fields = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def read_cpu_ticks(path):
    with open(path) as f:
        text = f.read()
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)


def snapshot(pid):
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = read_status(f"/proc/{pid}/task/{tid}/status")
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            threads[tid] = {
                "name": name,
                "voluntary": int(status["voluntary_ctxt_switches"]),
                "nonvoluntary": int(status["nonvoluntary_ctxt_switches"]),
                "cpu_ticks": read_cpu_ticks(f"/proc/{pid}/task/{tid}/stat"),
            }
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended while we looked
    status = read_status(f"/proc/{pid}/status")
    return {
        "pid": pid,
        "time": time.monotonic(),
        "cpu_ticks": read_cpu_ticks(f"/proc/{pid}/stat"),
        "rss_kib": int(status["VmRSS"].split()[0]),
        "hwm_kib": int(status["VmHWM"].split()[0]),
        "threads": threads,
    }


def idle_diff(before, after, seconds):
    per_thread = []
    for tid, t in after["threads"].items():
        b = before["threads"].get(tid, {"voluntary": 0, "nonvoluntary": 0, "cpu_ticks": 0})
        vol = t["voluntary"] - b["voluntary"]
        nonvol = t["nonvoluntary"] - b["nonvoluntary"]
        per_thread.append({"tid": tid, "name": t["name"], "voluntary": vol, "nonvoluntary": nonvol,
                           "cpu_ms": (t["cpu_ticks"] - b["cpu_ticks"]) * 1000 / TICKS,
                           "new": tid not in before["threads"]})
    per_thread.sort(key=lambda t: -(t["voluntary"] + t["nonvoluntary"]))
    return {
        "seconds": seconds,
        "voluntary": sum(t["voluntary"] for t in per_thread),
        "nonvoluntary": sum(t["nonvoluntary"] for t in per_thread),
        "cpu_ms": (after["cpu_ticks"] - before["cpu_ticks"]) * 1000 / TICKS,
        "threads": len(after["threads"]),
        "threads_gone": len(set(before["threads"]) - set(after["threads"])),
        "rss_kib": after["rss_kib"],
        "per_thread": per_thread,
    }


def notify_listen(path, log):
    """Receives sd_notify datagrams (READY=1, STATUS=…, WATCHDOG=1) and logs them with a timestamp."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    with open(log, "a", buffering=1) as out:
        while True:
            data = s.recv(65536)
            for line in data.decode("utf-8", "replace").splitlines():
                out.write(f"{time.monotonic():.3f} {line}\n")


# --- summary -------------------------------------------------------------------------------------

def parse_result_line(line):
    fields = {}
    for part in line.split()[1:]:
        key, _, value = part.partition("=")
        fields[key] = value
    return fields


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.{digits}f}"


def summarize(workdir, out_path):
    meta = json.load(open(os.path.join(workdir, "meta.json")))
    runs = []
    with open(os.path.join(workdir, "load.results")) as f:
        for line in f:
            if line.startswith("RESULT "):
                runs.append(parse_result_line(line))
    scenarios = [("keepalive", 1), ("keepalive", 16), ("keepalive", 256), ("churn", 1), ("churn", 16), ("churn", 256)]

    def pick(server, mode, conns, key):
        return [float(r[key]) for r in runs
                if r["label"] == server and r["mode"] == mode and int(r["connections"]) == conns and key in r]

    lines = []
    w = lines.append
    w(f"# webhook-tokend benchmark — {meta['date']}")
    w("")
    w(f"- machine: {meta['nproc']} CPUs ({meta['cpu_model']}), {meta['kernel']}, load average before the run: {meta['loadavg']}")
    w(f"- versions: webhook-tokend {meta['commit']}, {meta['swift']}, {meta['nginx']}, {meta['hyperfine']}, {meta['curl']}")
    w(f"- run: {meta['rounds']} round(s) × {meta['duration']} s per scenario (after {meta['warmup']} s warm-up), "
      f"tokend and nginx alternating within each round (order swapped every round); medians across rounds")
    w(f"- tokend: `webhook-tokend --dev --dev-token-lifetime 86400` (release build; NIO event loops = cores; "
      f"the in-process token-endpoint emulator idles during the run)")
    w(f"- nginx: Debian nginx-light, `worker_processes {meta['nginx_workers_setting']}` ({meta['nginx_workers']} workers), "
      f"64-byte static file on a Unix socket, access_log off, keepalive_requests 10000000, otherwise defaults (sendfile off, no open_file_cache)")
    w(f"- load generator: Benchmarks/LoadGenerator (poll loop, {meta['client_threads']} client thread(s) for >1 connection, "
      f"1 for 1 connection); it shares the {meta['nproc']} cores with the server: compare ratios, not absolute numbers")
    w("")
    w("## Throughput, latency and server CPU per request (`GET /v1/token` vs nginx static 64 B)")
    w("")
    w("| scenario | tokend req/s | nginx req/s | tokend/nginx | tokend p50 µs | nginx p50 µs | tokend p99 µs | nginx p99 µs | tokend CPU µs/req | nginx CPU µs/req | tokend/nginx CPU | errors t/n |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    summary = {}
    for mode, conns in scenarios:
        row = {}
        for server in ("tokend", "nginx"):
            row[server] = {
                "rps": med(pick(server, mode, conns, "rps")),
                "p50": med(pick(server, mode, conns, "p50_us")),
                "p99": med(pick(server, mode, conns, "p99_us")),
                "cpu": med(pick(server, mode, conns, "server_cpu_us_per_req")),
                "errors": int(sum(pick(server, mode, conns, "errors"))),
                "rss_max": max(pick(server, mode, conns, "server_rss_kib"), default=None),
            }
        summary[(mode, conns)] = row
        t, n = row["tokend"], row["nginx"]
        label = f"{'keep-alive' if mode == 'keepalive' else 'new conn/request'}, {conns} conn"
        w(f"| {label} | {fmt(t['rps'])} | {fmt(n['rps'])} | {ratio(t['rps'], n['rps'])} | {fmt(t['p50'], 1)} | {fmt(n['p50'], 1)} "
          f"| {fmt(t['p99'], 1)} | {fmt(n['p99'], 1)} | {fmt(t['cpu'], 2)} | {fmt(n['cpu'], 2)} | {ratio(t['cpu'], n['cpu'])} | {t['errors']}/{n['errors']} |")
    w("")
    w("CPU µs/req = the server's utime+stime (/proc/PID/stat; nginx: master + workers) over the measured window ÷ responses "
      "in it (clock-tick resolution: 10 ms per window).")
    w("")

    # Client per-call time.
    hf = []
    for name in sorted(os.listdir(workdir)):
        if name.startswith("hyperfine-") and name.endswith(".json"):
            hf.append(json.load(open(os.path.join(workdir, name))))
    client = {}
    if hf:
        w("## Client per-call wall time (hyperfine -N, median of per-round medians)")
        w("")
        w("| command | median ms | mean ms | σ ms | ÷ curl |")
        w("|---|--:|--:|--:|--:|")
        keys = [("webhook-token", "webhook-token"), ("curl", "curl --unix-socket"), ("true", "/bin/true")]
        for key, _ in keys:
            results = [r for doc in hf for r in doc["results"] if r["command"] == key]  # named with hyperfine -n
            client[key] = {
                "median": med([r["median"] * 1000 for r in results]),
                "mean": med([r["mean"] * 1000 for r in results]),
                "stddev": med([r["stddev"] * 1000 for r in results if r.get("stddev") is not None]),
            }
        for key, label in keys:
            c = client[key]
            w(f"| `{label}` | {fmt(c['median'], 3)} | {fmt(c['mean'], 3)} | {fmt(c['stddev'], 3)} | {ratio(c['median'], client['curl']['median'])} |")
        base = client["true"]["median"]
        if None not in (client["webhook-token"]["median"], client["curl"]["median"], base):
            w("")
            w(f"Above a bare process start: webhook-token {client['webhook-token']['median'] - base:.3f} ms, "
              f"curl {client['curl']['median'] - base:.3f} ms "
              f"(ratio {ratio(client['webhook-token']['median'] - base, client['curl']['median'] - base)}).")
        w("")

    # Idle.
    idle = json.load(open(os.path.join(workdir, "idle.json")))
    w(f"## Idle ({idle['seconds']:.0f} s, two fresh daemons side by side: one with a 30 s watchdog, one without)")
    w("")
    w("| daemon | wakeups (voluntary ctx switches, all threads) | involuntary | CPU ms | threads | watchdog pings received | VmRSS MiB |")
    w("|---|--:|--:|--:|--:|--:|--:|")
    for key, label in (("watchdog", "with WATCHDOG_USEC=30 s"), ("plain", "no watchdog")):
        d = idle[key]
        w(f"| {label} | {d['voluntary']} | {d['nonvoluntary']} | {d['cpu_ms']:.0f} | {d['threads']} | {d.get('pings', '–')} | {d['rss_kib'] / 1024:.1f} |")
    w("")
    for key, label in (("watchdog", "with watchdog"), ("plain", "no watchdog")):
        busy = [t for t in idle[key]["per_thread"] if t["voluntary"] + t["nonvoluntary"] > 0]
        if busy:
            w(f"Threads that woke ({label}): " + ", ".join(
                f"{t['name']}[{t['tid']}] {t['voluntary']}+{t['nonvoluntary']}" + (" (new)" if t["new"] else "") for t in busy[:12]) + ".")
            w("")

    # RSS.
    rss_idle = idle["watchdog"]["rss_kib"]
    rss_load_t = summary[("keepalive", 256)]["tokend"]["rss_max"]
    rss_load_n = summary[("keepalive", 256)]["nginx"]["rss_max"]
    w("## Memory (VmRSS)")
    w("")
    w("| | idle | under load (end of the 256-connection keep-alive window, max over rounds) |")
    w("|---|--:|--:|")
    w(f"| tokend | {rss_idle / 1024:.1f} MiB | {fmt(rss_load_t and rss_load_t / 1024, 1)} MiB |")
    w(f"| nginx (master + workers) | {fmt(meta.get('nginx_rss_idle_kib') and meta['nginx_rss_idle_kib'] / 1024, 1)} MiB | {fmt(rss_load_n and rss_load_n / 1024, 1)} MiB |")
    w("")

    # Targets.
    w("## Targets (issue 5 §3)")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    for mode, conns in [("keepalive", 16), ("keepalive", 256), ("churn", 16), ("churn", 256)]:
        t, n = summary[(mode, conns)]["tokend"]["rps"], summary[(mode, conns)]["nginx"]["rps"]
        if t is not None and n:
            r = t / n
            gap = "" if r >= 1 else f" (short by {(1 - r) * 100:.0f} %)"
            w(f"| throughput ≥ nginx, {'keep-alive' if mode == 'keepalive' else 'new conn/request'}, {conns} conn | "
              f"{t:,.0f} vs {n:,.0f} req/s = {r:.2f}×{gap} | {verdict(r >= 1)} |")
    cpu16 = summary[("keepalive", 16)]["tokend"]["cpu"]
    cpu16c = summary[("churn", 16)]["tokend"]["cpu"]
    if cpu16 is not None:
        w(f"| server CPU ≤ 5 µs/request, 16 conn (keep-alive) | {cpu16:.2f} µs{'' if cpu16 <= 5 else f' ({cpu16 / 5:.1f}× the budget)'} "
          f"(nginx {summary[('keepalive', 16)]['nginx']['cpu']:.2f} µs) | {verdict(cpu16 <= 5)} |")
    if cpu16c is not None:
        w(f"| server CPU ≤ 5 µs/request, 16 conn (new conn/request) | {cpu16c:.2f} µs{'' if cpu16c <= 5 else f' ({cpu16c / 5:.1f}× the budget)'} "
          f"(nginx {summary[('churn', 16)]['nginx']['cpu']:.2f} µs) | {verdict(cpu16c <= 5)} |")
    if client and None not in (client["webhook-token"]["median"], client["curl"]["median"]):
        r = client["webhook-token"]["median"] / client["curl"]["median"]
        w(f"| client per call ≤ ¼ of curl's | {client['webhook-token']['median']:.3f} vs {client['curl']['median']:.3f} ms = {r:.2f}"
          f"{'' if r <= 0.25 else f' ({r / 0.25:.1f}× the budget)'} | {verdict(r <= 0.25)} |")
    wd, plain = idle["watchdog"], idle["plain"]
    pings = wd.get("pings") or 0
    extra = plain["voluntary"] + plain["nonvoluntary"]
    per_ping = f"{(wd['voluntary'] + wd['nonvoluntary'] - extra) / pings:.1f} context switches per ping; " if pings else ""
    others = "nothing else wakes it" if extra == 0 else f"{extra * 60 / idle['seconds']:.0f} other wakeups per minute"
    w(f"| idle: only watchdog pings and the renewal timer wake it | with the watchdog {wd['voluntary']}+{wd['nonvoluntary']} "
      f"context switches in {idle['seconds']:.0f} s for {pings} pings ({per_ping}CPU {wd['cpu_ms']:.0f} ms); "
      f"without it (no ping, no renewal due) {plain['voluntary']}+{plain['nonvoluntary']} (CPU {plain['cpu_ms']:.0f} ms) — "
      f"{others} "
      f"| {verdict(extra == 0)} |")
    w(f"| RSS ≤ 16 MiB idle | {rss_idle / 1024:.1f} MiB{'' if rss_idle <= 16384 else f' (+{(rss_idle - 16384) / 1024:.1f} MiB)'} | {verdict(rss_idle <= 16384)} |")
    w("")
    w(f"Raw results: every load-generator `RESULT` line of this run is in `{os.path.basename(out_path).rsplit('.', 1)[0]}.raw`.")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out_path, "w") as f:
        f.write(text)


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "snapshot":
        json.dump(snapshot(int(sys.argv[2])), sys.stdout)
    elif command == "idle-diff":
        before = json.load(open(sys.argv[2]))
        after = json.load(open(sys.argv[3]))
        json.dump(idle_diff(before, after, float(sys.argv[4])), sys.stdout)
    elif command == "notify-listen":
        notify_listen(sys.argv[2], sys.argv[3])
    elif command == "summarize":
        summarize(sys.argv[2], sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(64)


if __name__ == "__main__":
    main()
