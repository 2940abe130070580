import Testing
import WebhookTokenCore

/// An instant of a clock that only moves when a test moves it: the state machine never reads a
/// clock, so the tests can walk through a day of token lifetimes in microseconds.
struct ManualInstant: InstantProtocol, Sendable, CustomStringConvertible {
    typealias Duration = Swift.Duration

    /// Time since the manual clock's origin (the daemon's start, in these tests).
    var offset: Duration

    static let origin = ManualInstant(offset: .zero)

    static func at(_ seconds: Double) -> ManualInstant {
        ManualInstant(offset: .seconds(seconds))
    }

    func advanced(by duration: Duration) -> ManualInstant {
        ManualInstant(offset: offset + duration)
    }

    func duration(to other: ManualInstant) -> Duration {
        other.offset - offset
    }

    static func < (lhs: ManualInstant, rhs: ManualInstant) -> Bool {
        lhs.offset < rhs.offset
    }

    var description: String { "t+\(offset.seconds)s" }
}

/// SplitMix64: a tiny seeded generator, so that "random" jitter is the same on every run.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform number in `0..<1`, as the state machine's `unitRandom` parameters expect.
    mutating func unitRandom() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}

/// Waiters are plain numbers here: what the machine hands back is checked by identity.
typealias Machine = RenewalStateMachine<ManualInstant, Int>

/// What a refresh decided, without the answer's payload, for `#expect(… == …)`.
enum RefreshOutcome: Equatable {
    case fetchScheduled, joinedInFlight, rateLimited, backingOff, shuttingDown
}

extension RenewalStateMachine where Instant == ManualInstant, Waiter == Int {
    /// A refresh by a consumer that would wait as waiter 0.
    mutating func refresh(now: ManualInstant, requester: UInt32? = nil, waiter: Int = 0) -> RefreshOutcome {
        switch refreshRequested(now: now, requester: requester, waiter: waiter) {
        case .fetchScheduled: return .fetchScheduled
        case .joinedInFlight: return .joinedInFlight
        case .answerNow(_, .rateLimited): return .rateLimited
        case .answerNow(_, .backingOff): return .backingOff
        case .answerNow(_, .shuttingDown): return .shuttingDown
        }
    }
}

/// The wall-clock epoch the tests pretend the daemon started at: 2026-11-25T09:42:07Z
/// (`date -u -d 2026-11-25T09:42:07Z +%s`), one hour before the documented example expiry.
let startEpoch: Int64 = 1_795_599_727

/// The wall clock at a manual instant, in whole seconds.
func epoch(at instant: ManualInstant) -> Int64 {
    startEpoch + instant.offset.components.seconds
}

func token(
    _ accessToken: String = "eyJ.test.token", lifetime: Duration = .seconds(3600), scope: String = "*:webhooks/**"
)
    -> IssuedToken
{
    IssuedToken(accessToken: accessToken, lifetime: lifetime, scope: scope)
}

/// The endpoint is down: nothing listens on its port.
let connectionRefused = FetchFailure(
    kind: .connectionRefused, severity: .transient, detail: "endpoint unreachable (connection refused)")

/// The endpoint rejects the credentials.
let invalidClient = FetchFailure(
    kind: .rejected, severity: .permanent, httpStatus: 401, oauthError: "invalid_client",
    oauthErrorDescription: "Client authentication failed", detail: "endpoint answered 401")

extension Duration {
    /// Whether two durations are within a millisecond of each other (they are computed in `Double`).
    func isClose(to other: Duration, tolerance: Duration = .milliseconds(1)) -> Bool {
        let difference = self - other
        return difference < tolerance && difference > .zero - tolerance
    }
}
