import Logging
import Testing
import WebhookTokenCore
import WebhookTokenDaemon
import WebhookTokenProtocol
import WebhookTokenServer

/// The production broker — the driver of the renewal state machine — on a manual clock and a
/// hand-answered endpoint: an hour-long token, a suspend, a shutdown, in milliseconds.
@Suite struct TokenBrokerTests {
    let clock = ManualBrokerClock()
    let fetcher = ScriptedFetcher()

    func makeBroker(policy: RenewalPolicy = RenewalPolicy()) throws -> TokenBroker {
        let endpoint = Configuration.Endpoint(
            tokenURL: try TokenURL(parsing: "https://idp.example/token"), timeout: .seconds(15))
        return TokenBroker(
            endpoint: endpoint, request: TokenRequest(endpoint: endpoint, clientID: "c", secret: ClientSecret("s")),
            policy: policy, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), clock: clock,
            random: { 0 })
    }

    static func token(_ value: String = "tok", lifetime: Duration = .seconds(3600)) -> IssuedToken {
        IssuedToken(accessToken: value, lifetime: lifetime, scope: "*:webhooks/**")
    }

    /// Waits (in real time, briefly) for the broker's loop to reach a state the test can see.
    func until(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<500 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(2))
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }

    func rawToken(_ answer: TokenAnswer) -> String? {
        guard case .token(let presented, _, _) = answer else { return nil }
        return String(decoding: presented.raw, as: UTF8.self)
    }

    /// Before: the loop slept out the whole 45 minutes on the timer clock, which stops during a
    /// suspend — so a renewal due during a suspend came late by the suspended time.
    @Test func aRenewalDueDuringASuspendHappensWithinASliceOfTheResume() async throws {
        let broker = try makeBroker()
        let loop = Task { await broker.runRenewals(fetcher: fetcher) }
        defer { loop.cancel() }
        try await until("the first fetch") { fetcher.pending == 1 }
        fetcher.answer(.success(Self.token("first")))
        try await until("the loop to sleep") { clock.sleeperCount == 1 }

        clock.advance(by: .seconds(600))
        try await until("the loop to sleep again") { clock.sleeperCount == 1 }
        clock.suspend(for: .seconds(7200))  // asleep past the renewal point and the expiry
        // (No consumer asks: one would wake the loop at once.)
        #expect(broker.status().state == .expired, "expired while suspended")
        try await Task.sleep(for: .milliseconds(20))
        #expect(fetcher.calls == 1)

        // The loop's current slice ends within a minute of uptime; then it sees the deadline passed.
        clock.advance(by: TokenBroker.maximumSleepSlice)
        try await until("the renewal after the resume") { fetcher.calls == 2 }
        fetcher.answer(.success(Self.token("second")))
        try await until("the new token") { rawToken(broker.currentToken()) == "second" }
    }

    /// Before: liveness compared the boot-time deadline with boot-time now, so after a suspend the
    /// watchdog took the sleeping loop for a hung one and withheld its pings.
    @Test func theLivenessCheckToleratesASuspend() async throws {
        let broker = try makeBroker()
        let loop = Task { await broker.runRenewals(fetcher: fetcher) }
        defer { loop.cancel() }
        try await until("the first fetch") { fetcher.pending == 1 }
        fetcher.answer(.success(Self.token()))
        try await until("the loop to sleep") { clock.sleeperCount == 1 }
        clock.suspend(for: .seconds(3 * 3600))
        #expect(broker.renewalLoopIsAlive())
        // A loop that really overslept its slice is still caught.
        clock.advanceUptimeWithoutWaking(TokenBroker.maximumSleepSlice + .seconds(31))
        #expect(!broker.renewalLoopIsAlive())
    }

    @Test func aLoopStuckInAFetchIsNotAlive() async throws {
        let broker = try makeBroker()
        let loop = Task { await broker.runRenewals(fetcher: fetcher) }
        defer { loop.cancel() }
        try await until("the first fetch") { fetcher.pending == 1 }
        clock.advance(by: .seconds(44))
        #expect(broker.renewalLoopIsAlive(), "within timeout (15 s) + slack (30 s)")
        clock.advance(by: .seconds(2))
        #expect(!broker.renewalLoopIsAlive())
        fetcher.answer(.success(Self.token()))
    }

    /// Before: a consumer waiting for the first token was never answered on SIGTERM, and the
    /// shutdown waited for its connection to idle out (59 s).
    @Test func shutdownAnswersEveryWaiterAtOnce() async throws {
        let broker = try makeBroker()
        let loop = Task { await broker.runRenewals(fetcher: fetcher) }
        try await until("the first fetch") { fetcher.pending == 1 }
        async let first = broker.firstToken()
        async let refreshed = broker.refreshToken(peerUID: 1000)
        try await Task.sleep(for: .milliseconds(20))
        broker.shutdown()
        for answer in await [first, refreshed] {
            guard case .unavailable(let code, _, _) = answer else {
                Issue.record("expected shutting_down, got \(answer)")
                continue
            }
            #expect(code == .shuttingDown)
        }
        guard case .unavailable(.shuttingDown, _, _) = await broker.refreshToken(peerUID: 1) else {
            Issue.record("a refresh after shutdown must be answered at once")
            return
        }
        fetcher.answer(.success(Self.token()))
        await loop.value
    }

    @Test func aFailedRefreshAnswersTheCurrentTokenAndSaysWhy() async throws {
        let broker = try makeBroker()
        let loop = Task { await broker.runRenewals(fetcher: fetcher) }
        defer { loop.cancel() }
        try await until("the first fetch") { fetcher.pending == 1 }
        fetcher.answer(.success(Self.token("current")))
        try await until("the loop to sleep") { clock.sleeperCount == 1 }
        clock.advance(by: .seconds(60))
        async let refreshed = broker.refreshToken(peerUID: 1000)
        try await until("the refresh's fetch") { fetcher.pending == 1 }
        fetcher.answer(
            .failure(
                FetchFailure(kind: .serverError, severity: .transient, httpStatus: 503, detail: "endpoint answered 503")
            ))
        let answer = await refreshed
        guard case .token(let presented, _, let note) = answer else {
            Issue.record("expected the current token, got \(answer)")
            return
        }
        #expect(String(decoding: presented.raw, as: UTF8.self) == "current")
        #expect(note == TokenAnswer.RefreshNote(code: "server_error", detail: "endpoint answered 503"))
    }
}
