// A small HTTP/1.1 load generator for Unix stream sockets, for Benchmarks/run.
//
// Single file, Glibc + Foundation's Thread only; build with `swiftc -O`. Each client thread runs
// a poll(2) loop over its share of the connections (non-blocking sockets), so 256 connections cost
// a handful of threads, not 256. (poll, not epoll: Swift's Glibc module does not export
// <sys/epoll.h>, and a bridging header would make this more than one file.)
//
//   load-generator --socket PATH [--path /v1/token] [--mode keepalive|churn] [--connections N]
//                  [--threads T] [--duration S] [--warmup S] [--pids PID,PID,…] [--label TEXT]
//
// keepalive: every connection sends GET, reads the Content-Length-framed response, and repeats
//            (it reconnects if the server closes it).
// churn:     a new connection per request (`Connection: close`); the latency includes connect().
//
// Every response is checked: status 200 and a non-empty, Content-Length-framed body; anything else
// (refused or reset connection, early EOF, other status, missing framing) counts as an error and the
// connection is replaced. The run is bounded: warm-up, then the measured window, then it stops.
//
// Latencies go into a log-linear histogram (64 sub-buckets per power of two, ≤ 1.6 % error).
// Throughput counts the responses completed inside the measured window. With --pids, the server's
// CPU time (utime + stime from /proc/PID/stat, summed over the PIDs) is read at the window's edges,
// and its VmRSS and VmHWM (peak) at the end, so the CPU per request excludes warm-up and teardown.
//
// Output: human lines on stderr, and one machine-readable line on stdout:
//   RESULT label=… mode=… connections=… threads=… duration_s=… requests=… errors=… rps=…
//          p50_us=… p90_us=… p99_us=… max_us=… server_cpu_s=… server_cpu_us_per_req=… server_rss_kib=… server_hwm_kib=…

import Foundation
import Glibc

// MARK: - Options

struct Options {
    var socketPath = ""
    var path = "/v1/token"
    var churn = false
    var connections = 1
    var threads = 1
    var duration = 3.0
    var warmup = 1.0
    var pids: [Int32] = []
    var label = "-"
}

func usage(_ message: String) -> Never {
    fputs("load-generator: \(message)\n", stderr)
    fputs(
        "usage: load-generator --socket PATH [--path P] [--mode keepalive|churn] [--connections N] [--threads T] [--duration S] [--warmup S] [--pids PID,…] [--label L]\n",
        stderr)
    exit(64)
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let next = arguments.popFirst() else { usage("\(name) needs a value") }
        return next
    }
    while let argument = arguments.popFirst() {
        switch argument {
        case "--socket": options.socketPath = value(argument)
        case "--path": options.path = value(argument)
        case "--mode":
            switch value(argument) {
            case "keepalive", "keep-alive": options.churn = false
            case "churn": options.churn = true
            default: usage("--mode is keepalive or churn")
            }
        case "--connections": options.connections = Int(value(argument)) ?? 0
        case "--threads": options.threads = Int(value(argument)) ?? 0
        case "--duration": options.duration = Double(value(argument)) ?? -1
        case "--warmup": options.warmup = Double(value(argument)) ?? -1
        case "--pids":
            options.pids = value(argument).split(separator: ",").compactMap { Int32($0) }
        case "--label": options.label = value(argument)
        default: usage("unknown argument \(argument)")
        }
    }
    if options.socketPath.isEmpty { usage("--socket is required") }
    if options.socketPath.utf8.count >= 108 { usage("socket path too long") }
    guard (1...4096).contains(options.connections) else { usage("--connections must be 1…4096") }
    guard options.threads >= 1 else { usage("--threads must be ≥ 1") }
    options.threads = min(options.threads, options.connections)
    guard options.duration > 0 && options.duration <= 600 else { usage("--duration must be in (0, 600] s") }
    guard options.warmup >= 0 && options.warmup <= 60 else { usage("--warmup must be in [0, 60] s") }
    return options
}

// MARK: - Time, histogram

@inline(__always) func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

struct Histogram {
    static let bucketCount = 128 + 57 * 64
    var counts = [UInt64](repeating: 0, count: Histogram.bucketCount)
    var total: UInt64 = 0
    var maximum: UInt64 = 0

    @inline(__always) static func index(_ value: UInt64) -> Int {
        if value < 128 { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // ≥ 7
        let shift = exponent - 6
        return 128 + (shift - 1) * 64 + Int((value >> UInt64(shift)) & 63)
    }

    /// The middle of a bucket.
    static func value(at index: Int) -> UInt64 {
        if index < 128 { return UInt64(index) }
        let shift = (index - 128) / 64 + 1
        let sub = UInt64((index - 128) % 64)
        return ((64 + sub) << UInt64(shift)) + (UInt64(1) << UInt64(shift)) / 2
    }

    @inline(__always) mutating func record(_ nanoseconds: UInt64) {
        counts[Histogram.index(nanoseconds)] &+= 1
        total &+= 1
        if nanoseconds > maximum { maximum = nanoseconds }
    }

    mutating func merge(_ other: Histogram) {
        for i in 0..<counts.count { counts[i] &+= other.counts[i] }
        total &+= other.total
        maximum = max(maximum, other.maximum)
    }

    func percentile(_ p: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = max(1, UInt64((p / 100 * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= rank { return min(Histogram.value(at: i), maximum) }
        }
        return maximum
    }
}

// MARK: - /proc

/// utime + stime of a process (all its threads), in clock ticks.
func cpuTicks(_ pid: Int32) -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    // Fields after "(comm)": state is field 3; utime is 14, stime is 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
    return user + system
}

/// A `/proc/PID/status` memory field in KiB: `VmRSS` (resident now) or `VmHWM` (peak resident).
func statusKiB(_ pid: Int32, _ field: String = "VmRSS") -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { UInt64($0) }
    }
    return nil
}

// MARK: - Connections

struct Connection {
    var fd: Int32 = -1
    var used = 0
    var started: UInt64 = 0
}

final class Worker {
    let options: Options
    let request: [UInt8]
    let measureStart: UInt64
    let measureEnd: UInt64
    let connectionCount: Int
    var histogram = Histogram()
    var completedInWindow: UInt64 = 0
    var errors: UInt64 = 0
    var errorKinds: [String: UInt64] = [:]
    var connectRetries: UInt64 = 0
    var connections: [Connection]
    let bufferSize = 64 * 1024
    let buffers: UnsafeMutablePointer<UInt8>
    var address = sockaddr_un()
    /// poll(2) set: entry i watches connection i (fd −1 while closed, which poll ignores).
    let pollSet: UnsafeMutablePointer<pollfd>

    init(options: Options, connectionCount: Int, measureStart: UInt64, measureEnd: UInt64) {
        self.options = options
        self.connectionCount = connectionCount
        self.measureStart = measureStart
        self.measureEnd = measureEnd
        let connectionHeader = options.churn ? "Connection: close\r\n" : ""
        request = Array(
            "GET \(options.path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: webhook-tokend-bench\r\n\(connectionHeader)\r\n"
                .utf8)
        connections = [Connection](repeating: Connection(), count: connectionCount)
        buffers = .allocate(capacity: bufferSize * connectionCount)
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(options.socketPath.utf8)
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
            raw[bytes.count] = 0
        }
        pollSet = .allocate(capacity: connectionCount)
        pollSet.initialize(repeating: pollfd(fd: -1, events: Int16(POLLIN), revents: 0), count: connectionCount)
    }

    deinit {
        buffers.deallocate()
        pollSet.deallocate()
    }

    func fail(_ kind: String) {
        errors += 1
        errorKinds[kind, default: 0] += 1
    }

    /// Connects connection `i` and sends its first request. Returns false after counting an error.
    @discardableResult
    func open(_ i: Int) -> Bool {
        let started = monotonicNanoseconds()
        var attempts = 0
        while true {
            let fd = socket(
                AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                fail("socket")
                return false
            }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if result == 0 {
                connections[i] = Connection(fd: fd, used: 0, started: started)
                pollSet[i].fd = fd
                return send(i, started: started)
            }
            let error = errno
            close(fd)
            // A full accept backlog: the server is behind; try again (bounded), it is not an error yet.
            if error == EAGAIN && attempts < 1000 {
                attempts += 1
                connectRetries += 1
                sched_yield()
                continue
            }
            fail("connect: \(String(cString: strerror(error)))")
            return false
        }
    }

    func send(_ i: Int, started: UInt64) -> Bool {
        connections[i].started = started
        connections[i].used = 0
        let written = request.withUnsafeBytes { write(connections[i].fd, $0.baseAddress, $0.count) }
        if written != request.count {
            fail(written < 0 ? "write: \(String(cString: strerror(errno)))" : "short write")
            drop(i)
            return false
        }
        return true
    }

    func drop(_ i: Int) {
        if connections[i].fd >= 0 { close(connections[i].fd) }
        connections[i].fd = -1
        pollSet[i].fd = -1
    }

    /// Replaces a failed connection; while the server refuses, it stays closed until the next pass.
    func replace(_ i: Int) {
        drop(i)
        if monotonicNanoseconds() < measureEnd { open(i) }
    }

    enum Parse {
        case incomplete
        case complete(Int)
        case invalid(String)
    }

    /// Parses the response in connection `i`'s buffer: complete (total length), incomplete or invalid.
    func parse(_ buffer: UnsafeMutablePointer<UInt8>, _ used: Int) -> Parse {
        guard used >= 4 else { return .incomplete }
        var headEnd = -1
        var k = 3
        while k < used {
            if buffer[k] == 10 && buffer[k - 1] == 13 && buffer[k - 2] == 10 && buffer[k - 3] == 13 {
                headEnd = k + 1
                break
            }
            k += 1
        }
        if headEnd < 0 { return used >= bufferSize ? .invalid("head too large") : .incomplete }
        // "HTTP/1.1 200 "
        guard headEnd > 12, buffer[0] == 72, buffer[1] == 84, buffer[2] == 84, buffer[3] == 80, buffer[8] == 32 else {
            return .invalid("not HTTP")
        }
        guard buffer[9] == 50, buffer[10] == 48, buffer[11] == 48 else {
            return .invalid(
                "status \(String(decoding: UnsafeBufferPointer(start: buffer + 9, count: 3), as: UTF8.self))")
        }
        // Content-Length, case-insensitively, at the start of a header line.
        let name = Array("content-length:".utf8)
        var contentLength = -1
        var line = 0
        while line < headEnd {
            if buffer[line] == 10 || line == 0 {
                let start = buffer[line] == 10 ? line + 1 : line
                if start + name.count < headEnd {
                    var match = true
                    for j in 0..<name.count where (buffer[start + j] | 0x20) != name[j] {
                        // ':' | 0x20 == ':', '-' | 0x20 == '-': lowercasing is safe for these bytes.
                        match = false
                        break
                    }
                    if match {
                        var p = start + name.count
                        while buffer[p] == 32 { p += 1 }
                        var value = 0
                        var digits = 0
                        while buffer[p] >= 48 && buffer[p] <= 57 {
                            value = value * 10 + Int(buffer[p] - 48)
                            p += 1
                            digits += 1
                        }
                        if digits > 0 { contentLength = value }
                    }
                }
            }
            line += 1
        }
        guard contentLength >= 0 else { return .invalid("no Content-Length") }
        guard contentLength > 0 else { return .invalid("empty body") }
        let total = headEnd + contentLength
        guard total <= bufferSize else { return .invalid("response too large") }
        return used >= total ? .complete(total) : .incomplete
    }

    func readable(_ i: Int) {
        let fd = connections[i].fd
        guard fd >= 0 else { return }
        let buffer = buffers + i * bufferSize
        let used = connections[i].used
        let n = read(fd, buffer + used, bufferSize - used)
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            fail("read: \(String(cString: strerror(errno)))")
            replace(i)
            return
        }
        if n == 0 {
            // EOF: fine between keep-alive responses (the server closed an idle connection), an error mid-response.
            if used > 0 { fail("EOF mid-response") }
            replace(i)
            return
        }
        connections[i].used = used + n
        switch parse(buffer, used + n) {
        case .incomplete:
            return
        case .invalid(let reason):
            fail(reason)
            replace(i)
        case .complete(let total):
            let now = monotonicNanoseconds()
            if now >= measureStart && now < measureEnd {
                completedInWindow += 1
                histogram.record(now - connections[i].started)
            }
            if total != used + n {
                fail("extra bytes after response")
                replace(i)
                return
            }
            if now >= measureEnd {
                drop(i)
                return
            }
            if options.churn || Self.closes(buffer, total) {
                drop(i)
                open(i)
            } else {
                if !send(i, started: now) { replace(i) }
            }
        }
    }

    /// The response announced `Connection: close` (e.g. a keep-alive request limit).
    static func closes(_ buffer: UnsafeMutablePointer<UInt8>, _ length: Int) -> Bool {
        let needle = Array("\nconnection: close".utf8)
        guard length > needle.count else { return false }
        var i = 0
        outer: while i + needle.count <= length {
            for j in 0..<needle.count where (buffer[i + j] | (j == 0 ? 0 : 0x20)) != needle[j] {
                i += 1
                continue outer
            }
            return true
        }
        return false
    }

    func run() {
        for i in 0..<connectionCount { open(i) }
        var lastRepair = monotonicNanoseconds()
        while true {
            let now = monotonicNanoseconds()
            if now >= measureEnd { break }
            // Connections that could not be (re)opened get another chance every 10 ms.
            if now - lastRepair > 10_000_000 {
                lastRepair = now
                for i in 0..<connectionCount where connections[i].fd < 0 { open(i) }
            }
            let timeout = Int32(min(50, max(1, (measureEnd - now) / 1_000_000 + 1)))
            var ready = Int(poll(pollSet, nfds_t(connectionCount), timeout))
            if ready < 0 {
                if errno == EINTR { continue }
                fail("poll")
                break
            }
            var i = 0
            while ready > 0 && i < connectionCount {
                if pollSet[i].revents != 0 {
                    pollSet[i].revents = 0
                    ready -= 1
                    readable(i)
                }
                i += 1
            }
        }
        for i in 0..<connectionCount { drop(i) }
    }
}

// MARK: - Main

let options = parseOptions()
signal(SIGPIPE, SIG_IGN)

let start = monotonicNanoseconds()
let measureStart = start + UInt64(options.warmup * 1e9)
let measureEnd = measureStart + UInt64(options.duration * 1e9)

var workers: [Worker] = []
for t in 0..<options.threads {
    let count = options.connections / options.threads + (t < options.connections % options.threads ? 1 : 0)
    workers.append(Worker(options: options, connectionCount: count, measureStart: measureStart, measureEnd: measureEnd))
}
let finished = DispatchSemaphore(value: 0)
for worker in workers {
    let thread = Thread {
        worker.run()
        finished.signal()
    }
    thread.stackSize = 1 << 20
    thread.start()
}

func sleep(until deadline: UInt64) {
    while true {
        let now = monotonicNanoseconds()
        if now >= deadline { return }
        var ts = timespec(tv_sec: Int((deadline - now) / 1_000_000_000), tv_nsec: Int((deadline - now) % 1_000_000_000))
        nanosleep(&ts, nil)
    }
}

sleep(until: measureStart)
let cpuBefore = options.pids.map { cpuTicks($0) ?? 0 }.reduce(0, +)
sleep(until: measureEnd)
let cpuAfter = options.pids.map { cpuTicks($0) ?? 0 }.reduce(0, +)
let rss = options.pids.map { statusKiB($0) ?? 0 }.reduce(0, +)
let hwm = options.pids.map { statusKiB($0, "VmHWM") ?? 0 }.reduce(0, +)
for _ in workers { finished.wait() }

var histogram = Histogram()
var requests: UInt64 = 0
var errors: UInt64 = 0
var retries: UInt64 = 0
var kinds: [String: UInt64] = [:]
for worker in workers {
    histogram.merge(worker.histogram)
    requests += worker.completedInWindow
    errors += worker.errors
    retries += worker.connectRetries
    for (kind, count) in worker.errorKinds { kinds[kind, default: 0] += count }
}

let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
let serverCPU = Double(cpuAfter &- cpuBefore) / ticksPerSecond
let cpuPerRequest = requests > 0 ? serverCPU * 1e6 / Double(requests) : 0
let rps = Double(requests) / options.duration
func us(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1000) }

fputs(
    "\(options.label) \(options.churn ? "churn" : "keepalive") c=\(options.connections) t=\(options.threads): "
        + "\(requests) responses in \(options.duration) s = \(String(format: "%.0f", rps))/s, "
        + "p50 \(us(histogram.percentile(50))) µs, p99 \(us(histogram.percentile(99))) µs, errors \(errors)"
        + (kinds.isEmpty
            ? "" : " \(kinds.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", "))")
        + (retries > 0 ? ", connect retries \(retries)" : "") + "\n", stderr)
var fields: [(String, String)] = [
    ("label", options.label), ("mode", options.churn ? "churn" : "keepalive"),
    ("connections", String(options.connections)), ("threads", String(options.threads)),
    ("duration_s", String(format: "%.3f", options.duration)), ("requests", String(requests)),
    ("errors", String(errors)), ("connect_retries", String(retries)),
    ("rps", String(format: "%.1f", rps)),
    ("p50_us", us(histogram.percentile(50))), ("p90_us", us(histogram.percentile(90))),
    ("p99_us", us(histogram.percentile(99))), ("max_us", us(histogram.maximum)),
]
if !options.pids.isEmpty {
    fields += [
        ("server_cpu_s", String(format: "%.3f", serverCPU)),
        ("server_cpu_us_per_req", String(format: "%.2f", cpuPerRequest)),
        ("server_rss_kib", String(rss)), ("server_hwm_kib", String(hwm)),
    ]
}
print("RESULT " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
// No response at all means the server could not be measured: fail, so that the run fails loudly.
exit(requests == 0 ? 1 : 0)
