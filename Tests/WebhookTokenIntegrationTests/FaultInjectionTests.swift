import Foundation
import Testing
import TokenEndpointEmulator

/// The fault matrix: the real daemon against a token endpoint that fails in every way one can,
/// while an auditor polls the socket continuously and checks every served token against what the
/// endpoint issued and when it expires.
@Suite("Fault injection", .serialized)
struct FaultInjectionTests {
    enum Fault: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case endpointDown, status500, status502, status503, tooManyRequests, hang, resetMidResponse, garbage200,
            oversizedBody, slowDrip, revokedCredentials

        var testDescription: String { rawValue }

        /// The error code the daemon must report while the fault lasts.
        var expectedCodes: Set<String> {
            switch self {
            case .endpointDown: return ["connection_refused"]
            case .status500, .status502, .status503: return ["server_error"]
            case .tooManyRequests: return ["rate_limited"]
            case .hang, .slowDrip: return ["timeout"]
            case .resetMidResponse: return ["connection_reset", "network_error"]
            case .garbage200: return ["invalid_response"]
            case .oversizedBody: return ["response_too_large"]
            case .revokedCredentials: return ["rejected"]
            }
        }

        var isPermanent: Bool { self == .revokedCredentials }

        /// The longest the daemon may take to serve again once the fault heals: the retry cap
        /// (0.5 s transient, 1 s permanent, in the harness), plus a request timeout (2 s) for
        /// faults that leave a request hanging, plus a margin for a loaded CI machine.
        var recoveryBound: Duration {
            switch self {
            case .hang, .slowDrip: return .seconds(4)
            case .revokedCredentials: return .seconds(3)
            case .tooManyRequests: return .seconds(3)  // Retry-After: 1 is honoured
            default: return .seconds(2)
            }
        }
    }

    func inject(_ fault: Fault, into harness: DaemonHarness) async {
        let emulator = harness.emulator
        switch fault {
        case .endpointDown: await emulator.shutdown()
        case .status500: emulator.setBehavior(.respond(status: 500, headers: [], body: #"{"error":"server_error"}"#))
        case .status502: emulator.setBehavior(.respond(status: 502, headers: [], body: "<html>Bad Gateway</html>"))
        case .status503: emulator.setBehavior(.respond(status: 503, headers: [.init("Retry-After", "0")], body: ""))
        case .tooManyRequests:
            emulator.setBehavior(.respond(status: 429, headers: [.init("Retry-After", "1")], body: ""))
        case .hang: emulator.setBehavior(.hang)
        case .resetMidResponse: emulator.setBehavior(.resetMidResponse)
        case .garbage200: emulator.setBehavior(.respond(status: 200, headers: [], body: "{\"access_tok"))
        case .oversizedBody: emulator.setBehavior(.oversized)
        case .slowDrip: emulator.setBehavior(.drip(interval: .milliseconds(200)))
        case .revokedCredentials: emulator.setCredentials(clientID: harness.clientID, clientSecret: "revoked")
        }
    }

    func heal(_ fault: Fault, harness: DaemonHarness) async throws {
        let emulator = harness.emulator
        switch fault {
        case .endpointDown: try await emulator.start(port: harness.port)
        case .revokedCredentials: emulator.setCredentials(clientID: harness.clientID, clientSecret: harness.secret)
        default: emulator.setBehavior(.issue)
        }
    }

    @Test(arguments: Fault.allCases)
    func neverServesAnExpiredTokenAndRecovers(fault: Fault) async throws {
        let harness = try await DaemonHarness(expiresIn: 2)
        defer { Task { await harness.cleanup() } }
        let launched = ContinuousClock.now
        try await harness.launch()
        try await harness.waitForToken()
        let auditor = TokenAuditor(socketPath: harness.socketPath, emulator: harness.emulator)
        try await Task.sleep(for: .milliseconds(300))

        await inject(fault, into: harness)
        let lastGood = try #require(harness.emulator.issuedTokens.last)
        // Let the fault outlast the last good token (2 s) by a margin.
        try await Task.sleep(until: lastGood.expiresAt + .milliseconds(1200))

        // While the fault lasts, status, client and log tell the truth (once an attempt has failed:
        // a hanging request takes its full timeout).
        var status: [String: Any] = [:]
        try await eventually(timeout: .seconds(5), "a failed attempt in /v1/status") {
            status = jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body) ?? [:]
            return (status["consecutive_failures"] as? Int ?? 0) >= 1
        }
        #expect(status["state"] as? String == (fault.isPermanent ? "failed" : "expired"), "\(status)\n\(harness.log())")
        let lastError = try #require(status["last_error"] as? [String: Any])
        #expect(fault.expectedCodes.contains(lastError["code"] as? String ?? ""), "last_error: \(lastError)")
        #expect(lastError["class"] as? String == (fault.isPermanent ? "permanent" : "transient"))
        if fault.isPermanent { #expect(lastError["error"] as? String == "invalid_client") }
        #expect(try await harness.client([]).status == 75)
        if fault == .tooManyRequests {
            let times = harness.emulator.requestTimes.filter { $0 > lastGood.issuedAt }
            for (earlier, later) in zip(times, times.dropFirst()) {
                #expect(earlier.duration(to: later) >= .milliseconds(950), "Retry-After: 1 not honoured")
            }
        }

        let healedAt = ContinuousClock.now
        try await heal(fault, harness: harness)
        try await eventually(timeout: fault.recoveryBound + .seconds(2), "recovery after \(fault)") {
            (try? socketRequest(harness.socketPath, "GET", "/v1/token").status) == 200
        }
        try await Task.sleep(for: .milliseconds(300))
        let report = await auditor.stop()

        #expect(report.violations == [])
        let recovered = try #require(report.firstServed(after: healedAt))
        #expect(
            healedAt.duration(to: recovered) <= fault.recoveryBound,
            "recovered after \(healedAt.duration(to: recovered))")
        // The last good token was served until close to its end as the daemon counts it: from its
        // request, which came after the launch (a fresh daemon's first fetch takes up to a second
        // on a busy machine, so the emulator's `expiresAt` can be that much later). Threshold
        // 0.2 s; the rest is for the auditor's polling (15 ms) on a busy machine.
        let lastServed = try #require(
            report.timeline.last { $0.at < healedAt && $0.token == lastGood.token }?.at)
        let nextAnswer = report.timeline.first { $0.at > lastServed }?.at
        #expect(
            lastServed >= launched + .seconds(2) - .milliseconds(200) - .milliseconds(400),
            """
            last served \(launched.duration(to: lastServed)) after the launch, \
            \(lastServed.duration(to: lastGood.expiresAt)) before the emulator's expiry; the auditor's next answer \
            \(nextAnswer.map { lastServed.duration(to: $0).description } ?? "never") later
            """)
        #expect(harness.emulator.maximumConcurrentRequests <= 1)
        #expect(report.errors == 0, "\(report.errorSamples)")
        #expect(try await harness.stop() == 0)
        let log = harness.log()
        #expect(fault.expectedCodes.contains { log.contains("error_code=\($0)") })
        #expect(harness.leakedSecrets() == [])
    }

    @Test(arguments: [1, 59, 60, 3600, 86400])
    func servesTokensOfEveryValidLifetime(expiresIn: Int) async throws {
        let harness = try await DaemonHarness(expiresIn: expiresIn)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let auditor = TokenAuditor(socketPath: harness.socketPath, emulator: harness.emulator)
        try await Task.sleep(for: .seconds(2.5))
        let report = await auditor.stop()
        #expect(report.violations == [])
        #expect(report.served > 50)
        let body = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/token").body))
        let left = try #require(body["expires_in"] as? Int)
        #expect(left <= expiresIn && left >= expiresIn - 3 || expiresIn == 1)
        // A 1 s token is renewed every 0.5 s (the floor), not in a tight loop.
        if expiresIn == 1 {
            #expect(harness.emulator.requestCount <= 9)
        } else {
            #expect(harness.emulator.requestCount == 1)
        }
        #expect(try await harness.stop() == 0)
    }

    @Test(arguments: ["0", "-5", "\"3600\"", nil])
    func refusesUnusableLifetimesUntilTheEndpointHeals(raw: String?) async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(.issueWithExpiresIn(raw))
        try await harness.launch()
        try await eventually("a few refused answers") { harness.emulator.requestCount >= 2 }
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 503)
        let status = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body))
        let lastError = try #require(status["last_error"] as? [String: Any])
        #expect(lastError["code"] as? String == "invalid_response")
        #expect((lastError["detail"] as? String)?.contains("expires_in") == true)
        harness.emulator.setBehavior(.issue)
        try await harness.waitForToken(timeout: .seconds(3))
        #expect(try await harness.stop() == 0)
    }
}
