import Foundation
import Testing
import TokenEndpointEmulator

/// A second token endpoint with a client of its own, for a named profile beside the harness's
/// default one: Identity Cloud's Hosted Login configuration client beside the webhooks one.
final class SecondEndpoint: Sendable {
    let emulator: TokenEndpointEmulator
    let port: Int
    let name: String
    let clientID: String
    let secret = "hosted-login secret +/="
    let secretFile: String
    let certificates: TestCertificates

    init(harness: DaemonHarness, name: String = "hosted-login", expiresIn: Int = 600) async throws {
        self.name = name
        clientID = "\(name)-client"
        let certificates = await TestCertificates.shared
        self.certificates = certificates
        emulator = TokenEndpointEmulator(
            options: .init(
                clientID: clientID, clientSecret: secret, expiresIn: expiresIn,
                tls: (certificates.serverCertificate, certificates.serverKey)))
        port = try await emulator.start()
        secretFile = try harness.directory.write("\(name).secret", secret + "\n", mode: 0o600)
    }

    /// The profile's tables, with `access` lines for its own `[access]`.
    func config(scope: String = "*:config/**", access: String? = nil) -> String {
        var text = """
            [profiles.\(name).endpoint]
            base_url = "https://127.0.0.1:\(port)"
            customer_id = "test-customer"
            scope = "\(scope)"
            ca_file = "\(certificates.caCertificate)"
            timeout = "2s"
            [profiles.\(name).credentials]
            client_id = "\(clientID)"
            client_secret_file = "\(secretFile)"

            """
        if let access { text += "[profiles.\(name).access]\n\(access)\n" }
        return text
    }

    var path: String { "/v1/tokens/\(name)" }

    /// Waits until the daemon serves this profile's token.
    func waitForToken(on harness: DaemonHarness) async throws {
        try await eventually("the \(name) profile's token") {
            (try? await socketRequestOnOwnThread(harness.socketPath, "GET", path).status) == 200
        }
    }
}

/// Several named tokens in one daemon, each isolated from the others.
@Suite("Profiles", .serialized)
struct ProfilesTests {
    @Test func eachProfileServesItsOwnTokenFromItsOwnClient() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let hostedLogin = try await SecondEndpoint(harness: harness)
        defer { Task { await hostedLogin.emulator.shutdown() } }
        try harness.writeConfig(extra: hostedLogin.config())
        try await harness.launch()
        try await harness.waitForToken()
        try await hostedLogin.waitForToken(on: harness)
        let webhooksToken = try #require(harness.emulator.issuedTokens.last?.token)
        let configToken = try #require(hostedLogin.emulator.issuedTokens.last?.token)
        #expect(hostedLogin.emulator.lastRequestedScope == "*:config/**")
        #expect(harness.emulator.lastRequestedScope == "*:webhooks/**")

        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw").body == webhooksToken)
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/tokens/default?format=raw").body == webhooksToken)
        #expect(try socketRequest(harness.socketPath, "GET", "\(hostedLogin.path)?format=raw").body == configToken)
        let unknown = try socketRequest(harness.socketPath, "GET", "/v1/tokens/nope")
        #expect(unknown.status == 404)
        #expect(unknown.header("X-Webhook-Tokend-Error") == "unknown_profile")
        #expect(unknown.body.contains("default, hosted-login"))

        // The client: --profile, and the environment.
        #expect(try await harness.client(["--profile", "hosted-login"]).standardOutput == configToken + "\n")
        #expect(
            try await harness.client([], environment: ["WEBHOOK_TOKEN_PROFILE": "hosted-login"]).standardOutput
                == configToken
                + "\n")
        #expect(try await harness.client([]).standardOutput == webhooksToken + "\n")
        let noSuch = try await harness.client(["--profile", "nope"])
        #expect(noSuch.status == 64)
        #expect(noSuch.standardError.contains("no such profile"))
        let status = try await harness.client(["status"])
        #expect(status.standardOutput.contains("profile default:"))
        #expect(status.standardOutput.contains("profile hosted-login:"))

        // Status and metrics, by profile.
        let json = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body))
        #expect(json["state"] as? String == "valid")
        #expect(json["summary"] as? String == "2/2 profiles valid")
        let profiles = try #require(json["profiles"] as? [String: Any])
        #expect(Set(profiles.keys) == ["default", "hosted-login"])
        let metrics = try socketRequest(harness.socketPath, "GET", "/metrics").body
        #expect(metrics.contains(#"webhook_tokend_state{profile="hosted-login",state="valid"} 1"#))
        #expect(try await harness.stop() == 0)
        #expect(harness.leakedSecrets() == [])
        #expect(!harness.log().contains(hostedLogin.secret))
    }

    /// One profile's endpoint hanging, then refusing the client, while the other renews
    /// untouched: an auditor on the healthy profile sees every answer served, none expired.
    @Test func oneProfilesOutageNeverTouchesAnother() async throws {
        let harness = try await DaemonHarness(expiresIn: 2)
        defer { Task { await harness.cleanup() } }
        let hostedLogin = try await SecondEndpoint(harness: harness, expiresIn: 2)
        defer { Task { await hostedLogin.emulator.shutdown() } }
        try harness.writeConfig(extra: hostedLogin.config())
        try await harness.launch()
        try await harness.waitForToken()
        try await hostedLogin.waitForToken(on: harness)
        let auditor = TokenAuditor(socketPath: harness.socketPath, emulator: harness.emulator)
        let before = harness.emulator.issuedTokens.count
        hostedLogin.emulator.setBehavior(.hang)
        try await Task.sleep(for: .seconds(3))
        hostedLogin.emulator.setBehavior(.issue)
        hostedLogin.emulator.setCredentials(clientID: hostedLogin.clientID, clientSecret: "revoked")
        try await Task.sleep(for: .seconds(3))
        let report = await auditor.stop()
        #expect(report.violations == [])
        #expect(report.refused == 0, "the healthy profile was never without a token")
        #expect(report.errors == 0, "\(report.errorSamples)")
        #expect(harness.emulator.issuedTokens.count >= before + 3, "the healthy profile kept renewing (every ~1.5 s)")
        #expect(harness.emulator.maximumConcurrentRequests <= 1)
        #expect(hostedLogin.emulator.maximumConcurrentRequests <= 1)

        let json = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body))
        #expect(json["state"] as? String == "failed", "the worst profile's state: \(json)")
        let summary = try #require(json["summary"] as? String)
        #expect(summary.hasPrefix("1/2 profiles valid; hosted-login: "), "\(summary)")
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        #expect(try await harness.stop() == 0)
    }

    @Test func eachProfileHasItsOwnAccessRule() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let hostedLogin = try await SecondEndpoint(harness: harness)
        defer { Task { await hostedLogin.emulator.shutdown() } }
        try harness.writeConfig(
            extra: "[access]\nallowed_users = [0]\n" + hostedLogin.config(access: "allowed_users = [\"nobody\"]"))
        try await harness.launch()
        try await harness.waitForToken()
        func asUser(_ user: String, _ arguments: [String]) async throws -> Shell.Result {
            try await harness.client(asUser: user, arguments)
        }
        try await eventually("the second profile's token") {
            try await asUser("nobody", ["--profile", "hosted-login"]).status == 0
        }
        #expect(try await harness.client([]).status == 0, "root may use the default profile")
        #expect(try await harness.client(["--profile", "hosted-login"]).status == 77, "but not hosted-login")
        #expect(try await asUser("nobody", []).status == 77)
        // A user no profile lets in is refused at once, and learns nothing of the profiles.
        let outsider = try await asUser("games", ["--profile", "hosted-login"])
        #expect(outsider.status == 77)
        #expect(!outsider.standardError.contains("hosted-login"), "\(outsider.standardError)")
        #expect(try await harness.stop() == 0)
    }

    @Test func reloadAddsChangesAndRemovesProfilesAndLeavesTheOthersAlone() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let hostedLogin = try await SecondEndpoint(harness: harness)
        defer { Task { await hostedLogin.emulator.shutdown() } }
        try await harness.launch()
        try await harness.waitForToken()
        let process = try #require(harness.process)
        let webhooksToken = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw").body

        // Added.
        try harness.writeConfig(extra: hostedLogin.config())
        kill(process.processIdentifier, SIGHUP)
        try await hostedLogin.waitForToken(on: harness)
        // Changed: a new scope means a new token.
        let requests = hostedLogin.emulator.requestCount
        try harness.writeConfig(extra: hostedLogin.config(scope: "*:config/read"))
        kill(process.processIdentifier, SIGHUP)
        try await eventually("a token for the new scope") { hostedLogin.emulator.lastRequestedScope == "*:config/read" }
        #expect(hostedLogin.emulator.requestCount == requests + 1)
        // Removed: 404 at once.
        try harness.writeConfig()
        kill(process.processIdentifier, SIGHUP)
        try await eventually("the removed profile's 404") {
            (try? socketRequest(harness.socketPath, "GET", hostedLogin.path).status) == 404
        }
        // The profile that never changed kept its token and its schedule.
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw").body == webhooksToken)
        #expect(harness.emulator.requestCount == 1)
        #expect(try await harness.stop() == 0)
    }

    /// Readiness waits for every profile; exit 78 only when every profile is refused.
    @Test func onlyWhenEveryProfileIsRefusedDoesTheDaemonGiveUp() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let hostedLogin = try await SecondEndpoint(harness: harness)
        defer { Task { await hostedLogin.emulator.shutdown() } }
        hostedLogin.emulator.setCredentials(clientID: hostedLogin.clientID, clientSecret: "revoked")
        let notify = try NotifySocket(address: harness.directory.file("notify.sock"))
        try harness.writeConfig(extra: hostedLogin.config())
        try await harness.launch(environment: ["NOTIFY_SOCKET": notify.address])
        let ready = try await notify.wait(for: "READY", after: -1)
        #expect(ready.fields["STATUS"]?.hasPrefix("1/2 profiles valid; hosted-login: ") == true, "\(ready.fields)")
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        #expect(try await harness.stop() == 0)

        // Both refused: exit 78, with each profile's reason.
        harness.emulator.setCredentials(clientID: harness.clientID, clientSecret: "revoked too")
        try await harness.launch(waitForSocket: false)
        #expect(try await harness.waitForExit() == 78)
        #expect(harness.log().contains("Failed to obtain the first token of every profile: default: "))
    }

    @Test func withSeveralProfilesAndNoDefaultTheUnnamedRoutesSayWhichExist() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let first = try await SecondEndpoint(harness: harness, name: "webhooks")
        let second = try await SecondEndpoint(harness: harness, name: "hosted-login")
        defer {
            Task {
                await first.emulator.shutdown()
                await second.emulator.shutdown()
            }
        }
        try harness.writeConfigWithoutDefaultProfile(extra: first.config() + second.config())
        try await harness.launch()
        try await eventually("both tokens") {
            let firstStatus = try? await socketRequestOnOwnThread(harness.socketPath, "GET", first.path).status
            let secondStatus = try? await socketRequestOnOwnThread(harness.socketPath, "GET", second.path).status
            return firstStatus == 200 && secondStatus == 200
        }
        let unnamed = try socketRequest(harness.socketPath, "GET", "/v1/token")
        #expect(unnamed.status == 404)
        #expect(unnamed.header("X-Webhook-Tokend-Error") == "profile_required")
        #expect(unnamed.body.contains("hosted-login, webhooks"))
        #expect(try await harness.client([]).status == 64)
        #expect(try await harness.client(["--profile", "webhooks"]).status == 0)
        #expect(try await harness.stop() == 0)
    }
}
