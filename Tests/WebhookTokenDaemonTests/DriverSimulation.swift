import Logging
import Synchronization
import Testing
import WebhookTokenCore
import WebhookTokenDaemon

/// Runs the production broker — the real renewal driver — on a manual clock against a scripted
/// endpoint, for hours of simulated time, and probes what it would serve every `probeInterval`.
final class DriverSimulation {
    let clock = ManualBrokerClock()
    let fetcher = ScriptedFetcher()
    let broker: TokenBroker
    var fetchLatency = Duration.milliseconds(200)
    var probeInterval = Duration.seconds(10)
    /// A served token with fewer whole seconds than this left is served too late (the serving
    /// threshold of an hour-long token is 60 s); `nil` skips the check (`expires_in` is whole
    /// seconds, too coarse for short tokens).
    var tooLateBelowSeconds: Int64? = 60
    /// The endpoint: what a fetch started at an uptime returns.
    var endpoint: (Duration) -> Result<IssuedToken, FetchFailure> = { _ in .success(DriverSimulation.token()) }

    private(set) var fetchStarts: [Duration] = []
    /// Probes at which no token could be served.
    private(set) var unservedAt: [Duration] = []
    /// Probes at which a token was served with less than the serving threshold of life left.
    private(set) var servedTooLateAt: [Duration] = []
    private var nextProbe = Duration.zero

    init(policy: RenewalPolicy = RenewalPolicy(), seed: UInt64 = 0x5EED) throws {
        let generator = Mutex(SplitMix64(seed: seed))
        let endpoint = Configuration.Endpoint(tokenURL: try TokenURL(parsing: "https://idp.example/token"))
        broker = TokenBroker(
            endpoint: endpoint, request: TokenRequest(endpoint: endpoint, clientID: "c", secret: ClientSecret("s")),
            policy: policy, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), clock: clock,
            random: { generator.withLock { $0.unitRandom() } })
    }

    static func token(lifetime: Duration = .seconds(3600)) -> IssuedToken {
        IssuedToken(accessToken: "tok", lifetime: lifetime, scope: "*:webhooks/**")
    }

    func run(until end: Duration) async throws {
        let broker = self.broker
        let fetcher = self.fetcher
        let loop = Task { await broker.runRenewals(fetcher: fetcher) }
        defer { loop.cancel() }
        while clock.uptime < end {
            try await settle()
            if fetcher.pending > 0 {
                let started = clock.uptime
                fetchStarts.append(started)
                advance(to: started + fetchLatency)
                fetcher.answer(endpoint(started))
            } else if let deadline = clock.nextDeadline {
                advance(to: min(deadline, end))
            }
        }
        broker.shutdown()
        await loop.value
    }

    /// Waits (briefly, in real time) until the loop is idle: a fetch to answer, or asleep. The
    /// limit is a time, not a number of yields: while the other tests keep both threads of the
    /// cooperative pool busy, the loop's task may get its turn only after many of them.
    private func settle() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if fetcher.pending > 0 || clock.sleeperCount > 0 { return }
            await Task.yield()
        }
        Issue.record("the renewal loop never settled")
        throw CancellationError()
    }

    /// Moves the clock, probing what would be served on the way.
    private func advance(to uptime: Duration) {
        while nextProbe < uptime {
            clock.advance(to: nextProbe)
            let status = broker.status()
            if [.valid, .renewing, .degraded].contains(status.state) {
                if let limit = tooLateBelowSeconds, let left = status.expiresInSeconds, left < limit {
                    servedTooLateAt.append(nextProbe)
                }
            } else {
                unservedAt.append(nextProbe)
            }
            nextProbe += probeInterval
        }
        clock.advance(to: uptime)
    }

    var counters: RenewalCounters { broker.status().counters }
    var state: BrokerState { broker.status().state }
}

/// SplitMix64: a tiny seeded generator, so that "random" jitter is the same on every run.
struct SplitMix64: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func unitRandom() -> Double { Double(next() >> 11) * 0x1p-53 }
}
