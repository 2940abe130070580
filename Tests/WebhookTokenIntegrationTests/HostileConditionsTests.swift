import Foundation
import Testing
import TokenEndpointEmulator
import WebhookTokenServer

/// The daemon's promises — never serve an expired token, keep serving a valid one through any
/// outage, never stop for a reason retrying could fix, never let one local process deny the token
/// to another — against the real binary, a misbehaving HTTPS endpoint and hostile local peers.
/// Each test is a way a review broke a promise before it was kept.
@Suite("Hostile conditions", .serialized)
struct HostileConditionsTests {
    // MARK: - 1. Lifetime counted from the request

    /// An endpoint that mints the token and answers 4 s later (8 s tokens): the daemon used to
    /// count the lifetime from the answer, and served each token up to 3.2 s past its expiry.
    @Test func aSlowAnswerDoesNotStretchTheTokensLife() async throws {
        let harness = try await DaemonHarness(expiresIn: 8, endpointTimeout: "10s")
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(.issueDelayed(by: .seconds(4)))
        try await harness.launch()
        try await harness.waitForToken(timeout: .seconds(15))
        let auditor = TokenAuditor(socketPath: harness.socketPath, emulator: harness.emulator)
        try await Task.sleep(for: .seconds(14))
        let report = await auditor.stop()
        #expect(report.violations == [], "\(report.violations.prefix(3))")
        #expect(report.served > 100)
        #expect(harness.emulator.issuedTokens.count >= 3, "renewed through the slow answers")
        #expect(try await harness.stop() == 0)
    }

    // MARK: - 2. Permanent means the credentials or the request are wrong

    enum NotTheCredentials: String, CaseIterable, Sendable {
        case proxyHTML403, notFoundDuringADeploy, temporarilyUnavailable, unknownOAuthCode

        var behavior: TokenEndpointEmulator.Behavior {
            switch self {
            case .proxyHTML403:
                return .respond(
                    status: 403, headers: [.init("Content-Type", "text/html")], body: "<html>Request blocked</html>")
            case .notFoundDuringADeploy:
                return .respond(status: 404, headers: [.init("Content-Type", "text/html")], body: "<h1>Not Found</h1>")
            case .temporarilyUnavailable:
                return .respond(status: 400, headers: [], body: #"{"error":"temporarily_unavailable"}"#)
            case .unknownOAuthCode:
                return .respond(status: 400, headers: [], body: #"{"error":"slow_down_please"}"#)
            }
        }
    }

    /// Each of these made the first fetch "permanent": exit 78, which systemd never restarts.
    @Test(arguments: NotTheCredentials.allCases)
    func anErrorThatDoesNotBlameTheCredentialsNeverStopsTheDaemon(error: NotTheCredentials) async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(error.behavior)
        try await harness.launch()
        try await eventually("a few failed attempts") { harness.emulator.requestCount >= 3 }
        #expect(harness.process?.isRunning == true, "\(harness.log())")
        let status = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body))
        #expect(status["state"] as? String == "starting")
        #expect((status["last_error"] as? [String: Any])?["class"] as? String == "transient")
        harness.emulator.setBehavior(.issue)
        try await harness.waitForToken(timeout: .seconds(3))
        #expect(try await harness.stop() == 0)
    }

    // MARK: - 3. The granted scope

    /// Identity Cloud answers a scope its token policy lacks with a valid token that has no scope.
    @Test func aTokenWithoutTheRequestedScopeStopsTheStartWithTheRemedy() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(.issueWithScope(#""""#))
        try await harness.launch(waitForSocket: false)
        #expect(try await harness.waitForExit() == 78)
        let log = harness.log()
        #expect(log.contains("insufficient_scope"), "\(log)")
        #expect(log.contains("allowedScopes"))
        #expect(log.contains("*:webhooks/**"))
    }

    @Test func aRenewalWithoutTheRequestedScopeKeepsTheCurrentToken() async throws {
        let harness = try await DaemonHarness(expiresIn: 4)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let current = try #require(harness.emulator.issuedTokens.last?.token)
        harness.emulator.setBehavior(.issueWithScope(#""read:other""#))
        try await eventually("a refused renewal") { harness.emulator.requestCount >= 2 }
        try await Task.sleep(for: .milliseconds(100))
        let status = try #require(jsonObject(try socketRequest(harness.socketPath, "GET", "/v1/status").body))
        #expect(status["state"] as? String == "degraded", "\(status)")
        let lastError = try #require(status["last_error"] as? [String: Any])
        #expect(lastError["code"] as? String == "insufficient_scope")
        #expect(lastError["class"] as? String == "permanent")
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token?format=raw").body == current)
        #expect(harness.process?.isRunning == true)
        #expect(try await harness.stop() == 0)
    }

    // MARK: - 4. Endpoint text is untrusted

    /// An endpoint made `webhook-token status` print terminal escape sequences and forged a
    /// separate log line.
    @Test func textFromTheEndpointCannotReachATerminalOrForgeALogLine() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let hostile = #"\u001b[2J\u001b[31mpwned\nwebhook-tokend: forged line "# + String(repeating: "A", count: 4000)
        harness.emulator.setBehavior(
            .respond(
                status: 503, headers: [], body: #"{"error":"server_error\u001b[5m","error_description":"\#(hostile)"}"#)
        )
        try await harness.launch()
        try await eventually("a failed attempt") { harness.emulator.requestCount >= 2 }
        let status = try await harness.client(["status"])
        #expect(!status.standardOutput.utf8.contains(0x1B), "\(status.standardOutput.debugDescription)")
        #expect(status.standardOutput.contains(#"\x1b[2J"#), "shown escaped, not dropped")
        #expect(status.standardOutput.utf8.count < 2000, "bounded")
        let raw = try socketRequest(harness.socketPath, "GET", "/v1/status?format=text").body
        #expect(!raw.utf8.contains(0x1B))
        let failure = try await harness.client([])
        #expect(failure.status == 75)
        #expect(!failure.standardError.utf8.contains(0x1B))
        #expect(try await harness.stop() == 0)
        let log = harness.log()
        #expect(!log.utf8.contains(0x1B))
        #expect(!log.contains("\nwebhook-tokend: forged line"))
    }

    // MARK: - 5. Refresh respects the endpoint's pace and never hides a valid token

    /// A refresh 30 s after `429 Retry-After: 300` started a fetch, and answered 503 while a
    /// valid token was held.
    @Test func refreshRespectsRetryAfterAndAnswersTheCurrentToken() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let current = try #require(harness.emulator.issuedTokens.last?.token)
        harness.emulator.setBehavior(.respond(status: 429, headers: [.init("Retry-After", "300")], body: ""))
        try await Task.sleep(for: .milliseconds(1100))  // past refresh_min_interval (1 s)

        // The refresh's own fetch is refused: the current token, and why there is no new one.
        let failed = try await socketRequestOnOwnThread(harness.socketPath, "POST", "/v1/token/refresh?format=raw")
        #expect(failed.status == 200)
        #expect(failed.body == current)
        #expect(failed.header("X-Webhook-Tokend-Refresh")?.hasPrefix("rate_limited; endpoint answered 429") == true)
        #expect(harness.emulator.requestCount == 2)

        // While Retry-After is waited out: no request at all.
        try await Task.sleep(for: .milliseconds(1100))
        let waited = try socketRequest(harness.socketPath, "POST", "/v1/token/refresh?format=raw")
        #expect(waited.status == 200)
        #expect(waited.body == current)
        #expect(waited.header("X-Webhook-Tokend-Refresh") == "backing_off")
        #expect(harness.emulator.requestCount == 2)

        let client = try await harness.client(["refresh"])
        #expect(client.status == 0)
        #expect(client.standardOutput == current + "\n")
        #expect(client.standardError.contains("no new token: backing_off"))
        #expect(try await harness.stop() == 0)
    }

    // MARK: - 6. One peer cannot lock the others out

    /// A process of one user holding every connection made every other user's client fail.
    @Test func oneUserCannotTakeEveryConnection() async throws {
        let harness = try await DaemonHarness(
            expiresIn: 600, socket: "max_connections = 40\nmax_connections_per_user = 10")
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        try await harness.waitForIdleConnections()
        var hoard: [SocketConnection] = []
        for _ in 0..<10 {
            let connection = try SocketConnection(path: harness.socketPath)
            #expect(try connection.request("GET", "/v1/token").status == 200)
            hoard.append(connection)
        }
        // This user's eleventh is refused at once, with the reason, without sending anything.
        let eleventh = try SocketConnection(path: harness.socketPath)
        let refused = try eleventh.readResponse()
        #expect(refused.status == 503)
        #expect(refused.header("X-Webhook-Tokend-Error") == "too_many_connections")
        #expect(refused.body.contains("max_connections_per_user"))
        let sameUser = try await harness.client([])
        #expect(sameUser.status == 75)
        #expect(sameUser.standardError.contains("too many connections"), "\(sameUser.standardError)")

        // Another user is served in full.
        let other = try await harness.client(asUser: "nobody")
        #expect(other.status == 0, "\(other.standardError)")
        hoard.removeAll()
        #expect(try await harness.stop() == 0)
    }

    /// A refused peer's idle connections stayed open until it sent a request.
    @Test func aRefusedPeerIsAnsweredAndClosedAtOnce() async throws {
        let harness = try await DaemonHarness(expiresIn: 600, extraConfig: "[access]\nallowed_users = [\"nobody\"]")
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        let idle = try SocketConnection(path: harness.socketPath, timeout: .seconds(2))
        let answer = try idle.readResponse()  // sent nothing
        #expect(answer.status == 403)
        #expect(answer.header("X-Webhook-Tokend-Error") == "peer_not_allowed")
        #expect(idle.isClosedByPeer())
        #expect(try await harness.client([]).status == 77)
        #expect(try await harness.stop() == 0)
    }

    // MARK: - 7. Stopping is prompt

    /// SIGTERM while a consumer waited for the first token took 59 s.
    @Test func stoppingAnswersWaitingConsumersAndIsPrompt() async throws {
        let harness = try await DaemonHarness(expiresIn: 600, endpointTimeout: "60s")
        defer { Task { await harness.cleanup() } }
        harness.emulator.setBehavior(.hang)
        try await harness.launch()
        let waiting = try SocketConnection(path: harness.socketPath, timeout: .seconds(20))
        try waiting.send("GET /v1/token HTTP/1.1\r\nHost: x\r\n\r\n")
        let refreshing = try SocketConnection(path: harness.socketPath, timeout: .seconds(20))
        try refreshing.send("POST /v1/token/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        try await Task.sleep(for: .milliseconds(300))

        let stopped = ContinuousClock.now
        let process = try #require(harness.process)
        kill(process.processIdentifier, SIGTERM)
        let answers = try await onOwnThread { try [waiting, refreshing].map { try $0.readResponse() } }
        for answer in answers {
            #expect(answer.status == 503)
            #expect(answer.header("X-Webhook-Tokend-Error") == "shutting_down")
        }
        try await eventually(timeout: .seconds(5), "the daemon to exit") { !process.isRunning }
        #expect(stopped.duration(to: .now) < .seconds(2), "stopped after \(stopped.duration(to: .now))")
        #expect(process.terminationStatus == 0)
    }

    // MARK: - 8. Reload means reload

    /// `[access]` changes on SIGHUP were only logged, so revoking a user needed a restart.
    @Test func reloadAppliesANewAccessRuleAtOnce() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        try await harness.launch()
        try await harness.waitForToken()
        let keptAlive = try SocketConnection(path: harness.socketPath)
        #expect(try keptAlive.request("GET", "/v1/token").status == 200)
        #expect(try await harness.client([]).status == 0)

        try harness.writeConfig(extra: "[access]\nallowed_users = [\"nobody\"]")
        let process = try #require(harness.process)
        kill(process.processIdentifier, SIGHUP)
        try await eventually("root to be refused") { try await harness.client([]).status == 77 }
        #expect(try keptAlive.request("GET", "/v1/token").status == 403, "an open connection sees the new rule")
        let asNobody = try await harness.client(asUser: "nobody")
        #expect(asNobody.status == 0)

        // A name that does not resolve is a failed reload: the running rule stays.
        try harness.writeConfig(extra: "[access]\nallowed_users = [\"no-such-user-here\"]")
        kill(process.processIdentifier, SIGHUP)
        try await eventually("the failed reload") { harness.log().contains("no-such-user-here") }
        #expect(try await harness.client(asUser: "nobody").status == 0)
        #expect(harness.log().contains("Failed to reload configuration, keeping the current one"))
        #expect(try await harness.stop() == 0)
    }

    // MARK: - 10. Files the daemon trusts

    /// Setting the group and mode followed a symbolic link planted where the socket was bound.
    @Test func theSocketsModeIsNeverSetThroughALink() throws {
        let directory = try TemporaryDirectory.make(prefix: "wtlnk")
        defer { directory.remove() }
        let victim = try directory.write("victim", "precious", mode: 0o600)
        let path = directory.file("token.sock")
        symlink(victim, path)
        #expect(throws: SocketFile.Problem.notOurSocket(path: path)) {
            try SocketFile.finishBinding(path: path, mode: 0o666, groupID: nil, lock: nil)
        }
        var info = stat()
        stat(victim, &info)
        #expect(info.st_mode & 0o777 == 0o600)
    }

    /// Two instances started together could remove each other's socket.
    @Test func twoInstancesStartedTogetherNeverShareTheSocket() async throws {
        let harness = try await DaemonHarness(expiresIn: 600)
        defer { Task { await harness.cleanup() } }
        let first = try await harness.launch(waitForSocket: false)
        let second = try harness.spawn(
            Binaries.daemon, ["--config", harness.configPath], environment: ChildProcess.environmentWithoutSystemd)
        try await eventually("one of them to give up") { !first.isRunning || !second.isRunning }
        let (winner, loser) = first.isRunning ? (first, second) : (second, first)
        #expect(loser.terminationStatus == 1)
        #expect(harness.log().contains("another webhook-tokend instance holds \(harness.socketPath).lock"))
        try await harness.waitForToken()
        #expect(winner.isRunning)
        kill(winner.processIdentifier, SIGTERM)
        try await eventually("the winner to stop") { !winner.isRunning }
        #expect(!FileManager.default.fileExists(atPath: harness.socketPath))
        #expect(!FileManager.default.fileExists(atPath: harness.socketPath + ".lock"))
    }
}
