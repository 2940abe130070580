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


CONTENDERS = [("tokend", "webhook-tokend"), ("nio", "minimal NIO"), ("nginx", "nginx")]
SCENARIOS = [("keepalive", 1), ("keepalive", 16), ("keepalive", 256), ("churn", 1), ("churn", 16), ("churn", 256)]

# Issue 12's targets, each in one place.
IDLE_WAKEUPS_PER_SECOND = 0.1
IDLE_RSS_MIB = 12
PEAK_RSS_MIB = 24
KEEPALIVE_CPU_VS_NIO = 1.15
NEW_CONNECTION_CPU_VS_NIO = 1.2
TARGET_CONNECTIONS = 16
CLIENT_VS_CURL = 0.25


def scenario_label(mode, conns):
    return f"{'keep-alive' if mode == 'keepalive' else 'new conn/request'}, {conns} conn"


def read_results(path):
    runs = []
    if os.path.exists(path):
        with open(path) as f:
            runs = [parse_result_line(line) for line in f if line.startswith("RESULT ")]
    return runs


def summarize(workdir, out_path):
    meta = json.load(open(os.path.join(workdir, "meta.json")))
    runs = read_results(os.path.join(workdir, "load.results"))
    peak_runs = read_results(os.path.join(workdir, "peak.results"))

    def pick(server, mode, conns, key):
        return [float(r[key]) for r in runs
                if r["label"] == server and r["mode"] == mode and int(r["connections"]) == conns and key in r]

    lines = []
    w = lines.append
    w(f"# webhook-tokend benchmark — {meta['date']}")
    w("")
    w(f"- machine: {meta['nproc']} CPUs ({meta['cpu_model']}), {meta['kernel']}, load average before the run: {meta['loadavg']}")
    w(f"- versions: webhook-tokend {meta['commit']}, {meta['swift']}, {meta['nginx']}, {meta['hyperfine']}, {meta['curl']}")
    w(f"- run: {meta['rounds']} round(s) × {meta['duration']:g} s per scenario (after {meta['warmup']:g} s warm-up), "
      f"the three contenders one after another in each scenario, their order rotated every round; medians across rounds")
    w(f"- webhook-tokend: `webhook-tokend --dev --dev-token-lifetime 86400`, `GET /v1/token` (release build; "
      f"{meta['tokend_threads']} threads under load; the in-process token-endpoint emulator idles during the run); "
      f"shared libraries: {', '.join(meta['tokend_libraries'])}")
    w("- minimal NIO: `Benchmarks/MinimalNIOServer`, NIO's standard HTTP/1.1 server pipeline and one handler answering "
      "a fixed 64-byte body with Content-Length, 1 event loop (the framework floor)")
    w(f"- nginx: Debian nginx-light, {meta['nginx_workers']} worker, 64-byte static file, access_log off, "
      "keepalive_requests 10000000, otherwise defaults (sendfile off, no open_file_cache)")
    w(f"- load generator: Benchmarks/LoadGenerator (poll loop, {meta['client_threads']} client thread(s) for >1 connection, "
      f"1 for 1 connection), all on Unix sockets; it shares the {meta['nproc']} cores with the server: compare ratios "
      "of one run, not absolute numbers across machines")
    w("")

    summary = {}
    for mode, conns in SCENARIOS:
        summary[(mode, conns)] = {server: {
            "rps": med(pick(server, mode, conns, "rps")),
            "p50": med(pick(server, mode, conns, "p50_us")),
            "p99": med(pick(server, mode, conns, "p99_us")),
            "cpu": med(pick(server, mode, conns, "server_cpu_us_per_req")),
            "errors": int(sum(pick(server, mode, conns, "errors"))),
        } for server, _ in CONTENDERS}

    w("## Server CPU per request")
    w("")
    w("| scenario | webhook-tokend µs | minimal NIO µs | nginx µs | tokend ÷ NIO | tokend ÷ nginx |")
    w("|---|--:|--:|--:|--:|--:|")
    for mode, conns in SCENARIOS:
        row = summary[(mode, conns)]
        t, n, x = row["tokend"]["cpu"], row["nio"]["cpu"], row["nginx"]["cpu"]
        w(f"| {scenario_label(mode, conns)} | {fmt(t, 2)} | {fmt(n, 2)} | {fmt(x, 2)} | {ratio(t, n)} | {ratio(t, x)} |")
    w("")
    w("CPU µs per request = the server's utime+stime (/proc/PID/stat; nginx: master + worker) over the measured window "
      "÷ responses in it (clock-tick resolution: 10 ms per window). A new connection per request: the cost of a "
      "connection and its one request.")
    w("")
    w("## Throughput and latency")
    w("")
    w("| scenario | tokend req/s | NIO req/s | nginx req/s | tokend p50 µs | NIO p50 µs | nginx p50 µs "
      "| tokend p99 µs | NIO p99 µs | nginx p99 µs | errors t/n/x |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for mode, conns in SCENARIOS:
        row = summary[(mode, conns)]
        t, n, x = row["tokend"], row["nio"], row["nginx"]
        w(f"| {scenario_label(mode, conns)} | {fmt(t['rps'])} | {fmt(n['rps'])} | {fmt(x['rps'])} "
          f"| {fmt(t['p50'], 1)} | {fmt(n['p50'], 1)} | {fmt(x['p50'], 1)} "
          f"| {fmt(t['p99'], 1)} | {fmt(n['p99'], 1)} | {fmt(x['p99'], 1)} | {t['errors']}/{n['errors']}/{x['errors']} |")
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
            w(f"| `{label}` | {fmt(c['median'], 3)} | {fmt(c['mean'], 3)} | {fmt(c['stddev'], 3)} "
              f"| {ratio(c['median'], client['curl']['median'])} |")
        base = client["true"]["median"]
        if None not in (client["webhook-token"]["median"], client["curl"]["median"], base):
            w("")
            w(f"Above a bare process start: webhook-token {client['webhook-token']['median'] - base:.3f} ms, "
              f"curl {client['curl']['median'] - base:.3f} ms "
              f"(ratio {ratio(client['webhook-token']['median'] - base, client['curl']['median'] - base)}).")
        w("")

    # Idle.
    idle = json.load(open(os.path.join(workdir, "idle.json")))
    seconds = idle["seconds"]
    w(f"## Idle ({seconds:.0f} s, two fresh daemons side by side: one with a 30 s watchdog, one without)")
    w("")
    w("| daemon | wakeups (voluntary ctx switches, all threads) | involuntary | wakeups/s | CPU ms | CPU ms/min "
      "| threads | watchdog pings received | VmRSS MiB |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for key, label in (("watchdog", "with WATCHDOG_USEC=30 s"), ("plain", "no watchdog")):
        d = idle[key]
        w(f"| {label} | {d['voluntary']} | {d['nonvoluntary']} | {d['voluntary'] / seconds:.3f} "
          f"| {d['cpu_ms']:.0f} | {d['cpu_ms'] * 60 / seconds:.0f} | {d['threads']} | {d.get('pings', '–')} "
          f"| {d['rss_kib'] / 1024:.1f} |")
    w("")
    w("A wakeup is a voluntary context switch: the thread slept and something woke it. An involuntary one is "
      "a thread that was already awake being preempted — typically by the notify listener its watchdog ping "
      "has just woken — and is shown, not counted.")
    w("")
    for key, label in (("watchdog", "with watchdog"), ("plain", "no watchdog")):
        busy = [t for t in idle[key]["per_thread"] if t["voluntary"] + t["nonvoluntary"] > 0]
        w(f"Threads that woke ({label}): " + (", ".join(
            f"{t['name']}[{t['tid']}] {t['voluntary']}+{t['nonvoluntary']}" + (" (new)" if t["new"] else "")
            for t in busy[:12]) or "none") + ".")
        w("")

    # Memory.
    rss_idle = idle["watchdog"]["rss_kib"]
    peak = {r["label"]: r for r in peak_runs}

    def peak_kib(server):
        return float(peak[server]["server_hwm_kib"]) if server in peak and "server_hwm_kib" in peak[server] else None

    idle_rss = {"tokend": rss_idle, **{k: v for k, v in meta["idle_rss_kib"].items()}}
    w("## Memory")
    w("")
    w("| | VmRSS at rest | peak (VmHWM) after 1 000 concurrent keep-alive clients | their req/s |")
    w("|---|--:|--:|--:|")
    for server, label in CONTENDERS:
        rest = idle_rss.get(server)
        hwm = peak_kib(server)
        w(f"| {label}{' (master + worker)' if server == 'nginx' else ''} | {fmt(rest and rest / 1024, 1)} MiB "
          f"| {fmt(hwm and hwm / 1024, 1)} MiB | {fmt(float(peak[server]['rps']) if server in peak else None)} |")
    w("")
    w("webhook-tokend at rest: a fresh daemon that served `/v1/token`, `/v1/status` and `/metrics` once, after the "
      "idle window; its peak: the daemon that served every load scenario above, then the 1 000 clients. "
      "The others at rest: right after start.")
    w("")

    # Targets.
    w("## Targets (issue 12)")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    wd = idle["watchdog"]
    wakeups = wd["voluntary"] / seconds
    w(f"| idle, 30 s watchdog: ≤ {IDLE_WAKEUPS_PER_SECOND} wakeups/s | {wakeups:.3f}/s "
      f"({wd['voluntary']} in {seconds:.0f} s, {wd.get('pings', 0)} pings; {wd['nonvoluntary']} preemptions) "
      f"| {verdict(wakeups <= IDLE_WAKEUPS_PER_SECOND)} |")
    w(f"| idle, 30 s watchdog: no measurable CPU per minute | {wd['cpu_ms'] * 60 / seconds:.0f} ms/min "
      f"(clock ticks of 10 ms) | {verdict(wd['cpu_ms'] == 0)} |")
    w(f"| RSS at rest ≤ {IDLE_RSS_MIB} MiB | {rss_idle / 1024:.1f} MiB | {verdict(rss_idle <= IDLE_RSS_MIB * 1024)} |")
    hwm = peak_kib("tokend")
    if hwm is not None:
        w(f"| peak RSS ≤ {PEAK_RSS_MIB} MiB after 1 000 concurrent clients | {hwm / 1024:.1f} MiB "
          f"| {verdict(hwm <= PEAK_RSS_MIB * 1024)} |")
    for mode, bound in (("keepalive", KEEPALIVE_CPU_VS_NIO), ("churn", NEW_CONNECTION_CPU_VS_NIO)):
        row = summary[(mode, TARGET_CONNECTIONS)]
        t, n = row["tokend"]["cpu"], row["nio"]["cpu"]
        if t is not None and n:
            what = "keep-alive request" if mode == "keepalive" else "new connection"
            w(f"| CPU per {what} ≤ {bound}× the minimal NIO server's ({TARGET_CONNECTIONS} conn) "
              f"| {t:.2f} vs {n:.2f} µs = {t / n:.2f}× | {verdict(t / n <= bound)} |")
    if client and None not in (client["webhook-token"]["median"], client["curl"]["median"]):
        r = client["webhook-token"]["median"] / client["curl"]["median"]
        w(f"| client per call ≤ {CLIENT_VS_CURL:g} of curl's (issue 5) | {client['webhook-token']['median']:.3f} vs "
          f"{client['curl']['median']:.3f} ms = {r:.2f} | {verdict(r <= CLIENT_VS_CURL)} |")
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
