import Foundation
import Testing
import TokenEndpointEmulator

/// `webhook-token status --quiet`, the readiness probe of the Kubernetes examples: exit 0 only
/// while the daemon can serve a token, the usual exit status otherwise, and never any output.
@Suite("webhook-token status --quiet", .serialized)
struct ClientQuietStatusTests {
    @Test func exitsZeroSilentlyOnlyWhileATokenIsServable() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(.respond(status: 503, headers: [], body: ""))
        try await harness.launch()
        let waiting = try await harness.client(["status", "--quiet"])
        #expect(waiting.status == 75 && waiting.standardOutput.isEmpty && waiting.standardError.isEmpty, "\(waiting)")

        harness.emulator.setBehavior(.issue)
        try await harness.waitForToken()
        for arguments in [["status", "--quiet"], ["status", "-q"], ["-q", "status"]] {
            let ready = try await harness.client(arguments)
            #expect(
                ready.status == 0 && ready.standardOutput.isEmpty && ready.standardError.isEmpty,
                "\(arguments): \(ready)")
        }
        #expect(try await harness.stop() == 0)
    }

    @Test func isSilentWhenTheDaemonIsUnreachable() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtq")
        defer { directory.remove() }
        let result = try await Shell.run(
            Binaries.client, ["status", "--quiet", "--socket", directory.file("none.sock")])
        #expect(result.status == 69 && result.standardOutput.isEmpty && result.standardError.isEmpty, "\(result)")
    }

    @Test(
        "--quiet only goes with status",
        arguments: [["--quiet"], ["refresh", "--quiet"], ["status", "--quiet", "--json"]])
    func isAUsageErrorElsewhere(arguments: [String]) async throws {
        let result = try await Shell.run(Binaries.client, arguments + ["--socket", "/nonexistent/token.sock"])
        #expect(result.status == 64 && result.standardError.contains("--quiet only applies to 'status'"), "\(result)")
    }
}
