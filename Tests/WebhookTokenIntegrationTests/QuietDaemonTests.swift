import Foundation
import Testing

/// The daemon's threads decide how often it wakes at rest (Benchmarks/run counts the wakeups):
/// the main thread, the signal thread and one NIO event loop, which sleeps until a socket or a
/// timer of the daemon's needs it. A libdispatch worker thread means libdispatch's pool monitor,
/// which wakes the process every second from then on; a `Task.sleep`, a `DispatchQueue`, a
/// ServiceLifecycle signal handler or an `HTTPClient.shutdown` on the daemon's path starts one.
@Suite("Quiet daemon", .serialized)
struct QuietDaemonTests {
    @Test func runsOnlyItsOwnThreadsAfterFetchingAndServing() async throws {
        // Dev mode: the token comes over plain HTTP from the in-process emulator.
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        let process = try await harness.launch(arguments: ["--dev", "--socket", harness.socketPath])
        try await harness.waitForToken()
        try serveEachEndpoint(harness)

        expectOnlyOwnThreads(threadNames(of: process.processIdentifier))
        #expect(try await harness.stop() == 0)
    }

    @Test func fetchingOverTLSStartsLibdispatch() async throws {
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        let process = try await harness.launch()
        try await harness.waitForToken()
        try serveEachEndpoint(harness)

        let names = threadNames(of: process.processIdentifier)
        withKnownIssue(
            """
            AsyncHTTPClient 1.37 creates each TLS context on a DispatchQueue (SSLContextCache), which \
            starts libdispatch's worker-pool monitor: one wakeup a second from the first HTTPS fetch on
            """
        ) {
            expectOnlyOwnThreads(names)
        }
        #expect(try await harness.stop() == 0)
    }

    @Test func theWatchdogGivesBackServingsCodeAtRest() async throws {
        // Dev mode, a ping every second; the first look after start-up has nothing to compare.
        let harness = try await DaemonHarness(expiresIn: 3600)
        defer { Task { await harness.cleanup() } }
        let notify = try NotifySocket(address: harness.directory.file("notify.sock"))
        let process = try await harness.launch(
            arguments: ["--dev", "--socket", harness.socketPath],
            environment: ["NOTIFY_SOCKET": harness.directory.file("notify.sock"), "WATCHDOG_USEC": "2000000"])
        try await harness.waitForToken()
        try await Task.sleep(for: .seconds(2))  // the start-up release (a second after the fetch)
        try serveEachEndpoint(harness)
        let serving = try residentKiB(of: process.processIdentifier)
        // Two pings without a connection coming or going: at rest, the code is given back.
        let pings = notify.messages(with: "WATCHDOG").count
        try await eventually("three more watchdog pings") { notify.messages(with: "WATCHDOG").count >= pings + 3 }
        let rest = try residentKiB(of: process.processIdentifier)
        #expect(rest < serving - 1024, "VmRSS \(serving) KiB after serving, \(rest) KiB at rest")
        #expect(try await harness.stop() == 0)
    }

    private func residentKiB(of pid: pid_t) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    private func serveEachEndpoint(_ harness: DaemonHarness) throws {
        for path in ["/v1/token", "/v1/status", "/metrics"] {
            #expect(try socketRequest(harness.socketPath, "GET", path).status == 200)
        }
    }

    private func expectOnlyOwnThreads(_ names: [String]) {
        #expect(names.filter { $0 == "webhook-tokend" }.count == 2, "main and signal threads: \(names)")
        #expect(names.filter { $0.hasPrefix("NIO-SGLTN-") }.count == 1, "one event loop: \(names)")
        #expect(names.count == 3, "no other thread (libdispatch's are named com.apple.…): \(names)")
    }

    private func threadNames(of pid: pid_t) -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { tid in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}
