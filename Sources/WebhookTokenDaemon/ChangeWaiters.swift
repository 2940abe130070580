import NIOCore
import NIOPosix
import Synchronization
import WebhookTokenProtocol
import WebhookTokenServer

/// Consumers long-polling one profile for a new token (`GET /v1/tokens/NAME?after=FP&wait=S`).
///
/// A waiter is answered as soon as a token with another fingerprint is served, or when its wait
/// runs out, with whatever is current then. However many wait, the profile keeps one timer, set
/// for the earliest deadline: a waiting request costs an entry in a list, not a timer of its own.
final class ChangeWaiters: Sendable {
    private struct Waiter {
        var id: Int
        var deadline: NIODeadline
        var continuation: CheckedContinuation<TokenAnswer?, Never>
    }

    private struct State {
        var waiters: [Waiter] = []
        var fingerprint: String?
        var timer: Scheduled<Void>?
        var timerDeadline: NIODeadline?
        var nextID = 0
        var stopped = false
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.eventLoop = eventLoop
    }

    /// Waits until the served token's fingerprint is not `fingerprint`, at most `maxWait`.
    /// Returns `nil` when the caller is to answer with the current token now (it changed, or
    /// the wait ran out), or the answer to give instead (`shutting_down`).
    func wait(after fingerprint: Substring, maxWait: Duration) async -> TokenAnswer? {
        let nanoseconds = maxWait.components.seconds * 1_000_000_000 + maxWait.components.attoseconds / 1_000_000_000
        let deadline = NIODeadline.now() + .nanoseconds(nanoseconds)
        return await withCheckedContinuation { continuation in
            let immediate: TokenAnswer?? = state.withLock { state in
                if state.stopped {
                    return .some(
                        .unavailable(code: .shuttingDown, detail: "the daemon is stopping", retryAfterSeconds: 1))
                }
                if let current = state.fingerprint, current != fingerprint { return .some(nil) }
                state.nextID += 1
                state.waiters.append(Waiter(id: state.nextID, deadline: deadline, continuation: continuation))
                arm(&state)
                return .none
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// A new token is served: every waiter whose fingerprint differs is answered now.
    func tokenChanged(fingerprint: String) {
        let woken = state.withLock { state -> [Waiter] in
            state.fingerprint = fingerprint
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in woken { waiter.continuation.resume(returning: nil) }
    }

    /// Answers every waiter `shutting_down`, and later waits at once.
    func shutdown() {
        let woken = state.withLock { state -> [Waiter] in
            state.stopped = true
            state.timer?.cancel()
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in woken {
            waiter.continuation.resume(
                returning: .unavailable(code: .shuttingDown, detail: "the daemon is stopping", retryAfterSeconds: 1))
        }
    }

    var count: Int { state.withLock { $0.waiters.count } }

    /// Sets the one timer for the earliest deadline, if it is not set for that already.
    private func arm(_ state: inout State) {
        guard let earliest = state.waiters.map(\.deadline).min() else { return }
        if let current = state.timerDeadline, current <= earliest, state.timer != nil { return }
        state.timer?.cancel()
        state.timerDeadline = earliest
        state.timer = eventLoop.scheduleTask(deadline: earliest) { [self] in timerFired() }
    }

    private func timerFired() {
        let now = NIODeadline.now()
        let due = state.withLock { state -> [Waiter] in
            state.timer = nil
            state.timerDeadline = nil
            let due = state.waiters.filter { $0.deadline <= now }
            state.waiters.removeAll { $0.deadline <= now }
            arm(&state)
            return due
        }
        for waiter in due { waiter.continuation.resume(returning: nil) }
    }
}
