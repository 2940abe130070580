import Foundation
import Testing
import TokenEndpointEmulator

/// The real `webhook-tokend` binary against a real HTTPS token endpoint, with tokens living a
/// few seconds so that renewals, outages and expiry happen within the test.
@Suite("Daemon end to end", .serialized)
struct DaemonEndToEndTests {
    @Test func servesTheTokenTheEndpointIssued() async throws {
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()

        let response = try socketRequest(harness.socketPath, "GET", "/v1/token")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.header("Cache-Control") == "no-store")
        let json = try #require(jsonObject(response.body))
        let token = try #require(json["access_token"] as? String)
        #expect(harness.emulator.issuedTokens.map(\.token) == [token])
        #expect(json["token_type"] as? String == "Bearer")
        #expect(json["scope"] as? String == "*:webhooks/**")
        let expiresIn = try #require(json["expires_in"] as? Int)
        #expect((55...60).contains(expiresIn))
        let expiresAt = try #require(json["expires_at"] as? String)
        let parsed = try #require(ISO8601DateFormatter().date(from: expiresAt))
        #expect(abs(parsed.timeIntervalSinceNow - Double(expiresIn)) < 3)

        let raw = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw")
        #expect(raw.body == token)
        #expect(raw.header("Content-Type")?.hasPrefix("text/plain") == true)
        let plain = try socketRequest(harness.socketPath, "GET", "/v1/token", headers: ["Accept": "text/plain"])
        #expect(plain.body == token)

        #expect(try await harness.stop() == 0)
        #expect(harness.leakedSecrets() == [])
    }

    @Test func renewsBeforeExpiryAndNeverServesAnExpiredToken() async throws {
        // 4 s tokens: renewed with about a second to spare, which a renewal over TLS takes on a
        // loaded machine (with 2 s tokens, half a second to spare, the suite's load once let one
        // expire before its successor arrived).
        let harness = try await DaemonHarness(expiresIn: 4)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()

        var seen: [String] = []
        let end = ContinuousClock.now + .seconds(9)
        while ContinuousClock.now < end {
            let response = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw")
            let receivedAt = ContinuousClock.now
            if response.status == 200 {
                let record = try #require(
                    harness.emulator.issuedTokens.first { $0.token == response.body },
                    "served a token the endpoint never issued")
                #expect(receivedAt < record.expiresAt, "served a token after its expiry")
                if seen.last != response.body { seen.append(response.body) }
            } else {
                Issue.record("no token served during normal renewals: \(response.status) \(response.body)")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        // Renewed at ~70–75 % of their life: at least 3 distinct tokens in 9 s.
        #expect(seen.count >= 3)
        #expect(Set(seen).count == seen.count, "an old token came back after renewal")
        #expect(harness.emulator.maximumConcurrentRequests == 1)
        #expect(try await harness.stop() == 0)
        #expect(harness.leakedSecrets() == [])
    }

    @Test func manyConcurrentClientsCauseOneTokenRequestPerRenewal() async throws {
        let harness = try await DaemonHarness(expiresIn: 2)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let before = harness.emulator.requestCount
        let started = ContinuousClock.now
        let path = harness.socketPath
        let failures = await onThreads(64) { _ in
            var failures = 0
            let end = ContinuousClock.now + .seconds(4)
            while ContinuousClock.now < end {
                if (try? socketRequest(path, "GET", "/v1/token"))?.status != 200 { failures += 1 }
            }
            return failures
        }.reduce(0, +)
        let elapsed = started.duration(to: .now)
        let requests = harness.emulator.requestCount - before
        // One renewal per ≥ 1.4 s (70 % of 2 s): never more requests than that allows.
        let allowed = Int((elapsed / .milliseconds(1400)).rounded(.up)) + 1
        #expect(failures == 0)
        #expect(requests >= 2)
        #expect(requests <= allowed, "\(requests) token requests in \(elapsed) under load")
        #expect(harness.emulator.maximumConcurrentRequests == 1)
        #expect(try await harness.stop() == 0)
    }

    @Test func keepsServingThroughAnOutageThenRefusesAfterExpiryThenRecovers() async throws {
        let harness = try await DaemonHarness(expiresIn: 3)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let first = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw").body
        let firstRecord = try #require(harness.emulator.issuedTokens.last)
        harness.emulator.setBehavior(.respond(status: 503, headers: [.init("Retry-After", "0")], body: "{}"))

        // While the first token is valid it keeps being served, outage or not.
        var refusedAt: ContinuousClock.Instant?
        var refusal: SocketConnection.Response?
        while refusedAt == nil && ContinuousClock.now < firstRecord.expiresAt + .seconds(2) {
            let response = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw")
            if response.status == 200 {
                #expect(response.body == first)
                #expect(ContinuousClock.now < firstRecord.expiresAt)
            } else {
                refusedAt = .now
                refusal = response
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let refused = try #require(refusal, "the expired token was still served")
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") != nil)
        let error = try #require(jsonObject(refused.body))
        #expect(error["error"] as? String == "no_valid_token")
        #expect((error["detail"] as? String)?.contains("503") == true)
        // Served until at most 0.3 s (a tenth of 3 s) before expiry, refused from then on.
        #expect(try #require(refusedAt) > firstRecord.expiresAt - .milliseconds(800))

        let status = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body))
        #expect(status["state"] as? String == "expired")
        let lastError = try #require(status["last_error"] as? [String: Any])
        #expect(lastError["http_status"] as? Int == 503)
        #expect(lastError["class"] as? String == "transient")
        #expect(try await harness.client([]).status == 75)

        // Heal: a new token within the retry cap (0.5 s) plus a margin.
        harness.emulator.setBehavior(.issue)
        let healed = ContinuousClock.now
        try await harness.waitForToken(timeout: .seconds(4))
        // Retry cap 0.5 s in the harness; the rest is margin for the suite's load on two cores.
        #expect(healed.duration(to: .now) < .seconds(3))
        let recovered = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw").body
        #expect(recovered != first)
        #expect(harness.emulator.maximumConcurrentRequests == 1)
        #expect(try await harness.stop() == 0)
        #expect(harness.leakedSecrets() == [])
    }

    @Test func refreshIsSingleFlightAndRateLimited() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)  // refresh_min_interval is 1 s in tests
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let original = try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw").body
        try await Task.sleep(for: .milliseconds(1100))  // leave the rate-limit window of the first fetch
        harness.emulator.setBehavior(.drip(interval: .milliseconds(2)))  // a fetch that takes a moment
        let before = harness.emulator.requestCount
        let path = harness.socketPath
        let answers = await onThreads(20) { _ in
            (try? socketRequest(path, "POST", "/v1/token/refresh?format=raw").body) ?? "request failed"
        }
        #expect(harness.emulator.requestCount - before == 1)
        #expect(Set(answers).count == 1)
        #expect(answers.first != original)
        #expect(harness.emulator.issuedTokens.last?.token == answers.first)
        // Within refresh_min_interval another refresh answers with the same token, without a fetch.
        harness.emulator.setBehavior(.issue)
        let again = try socketRequest(path, "POST", "/v1/token/refresh?format=raw")
        #expect(again.status == 200)
        #expect(again.body == answers.first)
        #expect(harness.emulator.requestCount - before == 1)
        #expect(try await harness.stop() == 0)
    }

    @Test func sigtermStopsCleanlyAndRemovesTheSocket() async throws {
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        // An idle keep-alive connection must not hold up the stop.
        let idle = try SocketConnection(path: harness.socketPath)
        _ = try idle.request("GET", "/v1/status")
        #expect(try await harness.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: harness.socketPath))
        #expect(idle.isClosedByPeer())
    }

    @Test func staleSocketFileFromACrashIsReplaced() async throws {
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        try makeStaleSocket(at: harness.socketPath)
        #expect(FileManager.default.fileExists(atPath: harness.socketPath))
        try await harness.launch()
        try await harness.waitForToken()
        #expect(try await harness.stop() == 0)
    }

    @Test func liveSocketIsNotStolen() async throws {
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let second = try await Shell.run(Binaries.daemon, ["--config", harness.configPath])
        #expect(second.status == 1)
        #expect(second.standardError.contains("another webhook-tokend instance holds \(harness.socketPath).lock"))
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)
        #expect(try await harness.stop() == 0)
    }

    @Test func firstFetchRejectedPermanentlyExitsWithTheEndpointsError() async throws {
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        _ = try harness.directory.write("wrong-secret", "not-the-secret\n", mode: 0o600)
        try harness.writeConfig(clientSecretFile: harness.directory.file("wrong-secret"))
        try await harness.launch(waitForSocket: false)
        #expect(try await harness.waitForExit() == 78)
        let log = harness.log()
        #expect(log.contains("invalid_client"))
        #expect(log.contains("Client authentication failed"))
        #expect(log.contains("check client_id and the client secret"))
        #expect(!log.contains("not-the-secret"))
        #expect(!FileManager.default.fileExists(atPath: harness.socketPath))
    }

    @Test func transientErrorsAtStartKeepTheDaemonRetrying() async throws {
        let harness = try await DaemonHarness(expiresIn: 60)
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(.respond(status: 502, headers: [], body: "bad gateway"))
        try await harness.launch()
        try await eventually("a few failed attempts") { harness.emulator.requestCount >= 3 }
        let refused = try socketRequest(harness.socketPath, "GET", "/v1/token")
        #expect(refused.status == 503)
        let status = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body))
        #expect(status["state"] as? String == "starting")
        harness.emulator.setBehavior(.issue)
        try await harness.waitForToken(timeout: .seconds(3))
        #expect(try await harness.stop() == 0)
    }
}

/// Leaves a socket file with nobody listening, as a crashed daemon would.
func makeStaleSocket(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: Array(path.utf8) + [0]) }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    listen(fd, 1)
    close(fd)
    guard bound == 0 else { throw TestFailure("bind \(path) failed") }
}
