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
