import Synchronization
import WebhookTokenDaemon

/// A clock for the broker that moves only when the test moves it, and can be suspended: the
/// suspend-aware clock (`now`) jumps while the timer clock (`uptime`) and its sleepers stand still,
/// as on a laptop or VM that sleeps.
final class ManualBrokerClock: BrokerClock {
    private struct Sleeper {
        var id: Int
        var deadline: Duration
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var bootOffset = Duration.zero
        var uptime = Duration.zero
        var sleepers: [Sleeper] = []
        var cancelled: Set<Int> = []
        var nextID = 0
    }

    private let origin = ContinuousClock.now
    private let state = Mutex(State())

    /// 2026-11-25T09:42:07Z.
    static let startEpoch: Int64 = 1_795_599_727

    var now: ContinuousClock.Instant { origin + state.withLock { $0.bootOffset } }
    var uptime: Duration { state.withLock { $0.uptime } }
    var epochSeconds: Int64 { Self.startEpoch + state.withLock { $0.bootOffset.components.seconds } }

    /// The sleeps in progress.
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// When the earliest sleep in progress ends, on the uptime clock.
    var nextDeadline: Duration? { state.withLock { $0.sleepers.map(\.deadline).min() } }

    /// Time passes until `uptime` (if it is later).
    func advance(to uptime: Duration) {
        let now = self.uptime
        if uptime > now { advance(by: uptime - now) }
    }

    func sleep(for duration: Duration) async {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.cancelled.remove(id) != nil || duration <= .zero { return true }
                    state.sleepers.append(
                        Sleeper(id: id, deadline: state.uptime + duration, continuation: continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume()
        }
    }

    /// Time passes, on both clocks; sleepers whose time has come wake.
    func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.bootOffset += duration
            state.uptime += duration
            let due = state.sleepers.filter { $0.deadline <= state.uptime }
            state.sleepers.removeAll { $0.deadline <= state.uptime }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Only the timer clock moves, and no sleeper wakes: a loop that failed to wake on time.
    func advanceUptimeWithoutWaking(_ duration: Duration) {
        state.withLock { $0.uptime += duration }
    }

    /// The machine sleeps for `duration`: only the suspend-aware clock moves.
    func suspend(for duration: Duration) {
        state.withLock { $0.bootOffset += duration }
    }
}
