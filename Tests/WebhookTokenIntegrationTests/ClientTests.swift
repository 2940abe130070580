import Foundation
import Testing
import TokenEndpointEmulator

/// The `webhook-token` binary: every output form and every exit code, against the real daemon.
@Suite("webhook-token client", .serialized)
struct ClientTests {
    @Test func printsTheTokenHeaderJSONAndStatus() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let token = try #require(harness.emulator.issuedTokens.last?.token)

        let bare = try await harness.client([])
        #expect(bare.status == 0)
        #expect(bare.standardOutput == token + "\n")
        #expect(bare.standardError == "")

        let header = try await harness.client(["--header"])
        #expect(header.standardOutput == "Authorization: Bearer \(token)\n")

        let json = try await harness.client(["--json"])
        #expect(json.status == 0)
        #expect(accessToken(in: json.standardOutput) == token)

        let status = try await harness.client(["status"])
        #expect(status.status == 0)
        #expect(status.standardOutput.hasPrefix("state:          valid"))
        #expect(!status.standardOutput.contains(token))

        let statusJSON = try await harness.client(["status", "--json"])
        #expect(jsonObject(statusJSON.standardOutput)?["state"] as? String == "valid")
        #expect(!statusJSON.standardOutput.contains(token))

        try await Task.sleep(for: .milliseconds(1100))  // past refresh_min_interval (1 s in tests)
        let refreshed = try await harness.client(["refresh"])
        #expect(refreshed.status == 0)
        let newToken = refreshed.standardOutput.trimmingCharacters(in: .newlines)
        #expect(newToken != token)
        #expect(harness.emulator.issuedTokens.last?.token == newToken)
        #expect(try await harness.stop() == 0)
    }

    @Test func readsTheSocketPathFromTheEnvironment() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let result = try await Shell.run(Binaries.client, [], environment: ["WEBHOOK_TOKEN_SOCKET": harness.socketPath])
        #expect(result.status == 0)
        #expect(result.standardOutput == (harness.emulator.issuedTokens.last?.token ?? "?") + "\n")
        #expect(try await harness.stop() == 0)
    }

    @Test func exitsUnavailableWhenNoDaemonListens() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtc")
        defer { directory.remove() }
        let missing = try await Shell.run(Binaries.client, ["--socket", directory.file("none.sock")])
        #expect(missing.status == 69)
        #expect(missing.standardError.contains("cannot reach the token daemon"))
        try makeStaleSocket(at: directory.file("stale.sock"))
        let refused = try await Shell.run(Binaries.client, ["--socket", directory.file("stale.sock")])
        #expect(refused.status == 69)
    }

    @Test func exitsTempFailWhenThereIsNoValidToken() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(.respond(status: 503, headers: [], body: ""))
        try await harness.launch()
        let result = try await harness.client([])
        #expect(result.status == 75)
        #expect(result.standardError.contains("no valid token"))
        #expect(result.standardOutput == "")
        #expect(try await harness.stop() == 0)
    }

    @Test func exitsNoPermissionWhenTheSocketIsNotAccessible() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try harness.writeConfig(extra: "")
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8).replacingOccurrences(
            of: #"mode = "0666""#, with: #"mode = "0600""#)
        _ = try harness.directory.write("config.toml", config, mode: 0o600)
        try await harness.launch()
        try await harness.waitForToken()
        let result = try await harness.client(asUser: "nobody")
        #expect(result.status == 77)
        #expect(result.standardError.contains("permission"))
        #expect(try await harness.stop() == 0)
    }

    @Test(arguments: [["--bogus"], ["--header", "--json"], ["--socket"], ["extra", "args"]])
    func exitsUsageOnBadArguments(arguments: [String]) async throws {
        let result = try await Shell.run(Binaries.client, arguments)
        #expect(result.status == 64)
        #expect(result.standardError.hasPrefix("webhook-token: "))
    }
}
