import Synchronization

/// Open socket connections, in all and per user, for the connection limits and the metrics.
///
/// A per-user share below the global limit keeps one local process — a runaway consumer, or a
/// hostile one holding connections open — from locking every other user out.
public final class ConnectionCounter: Sendable {
    private struct Counts {
        var total = 0
        var byUser: [UInt32: Int] = [:]
    }

    private let counts = Mutex(Counts())
    private let total = Atomic<Int>(0)
    private let changeCount = Atomic<Int>(0)

    public init() {}

    /// Counts a new connection of `uid`; returns the numbers now open, this one included.
    func open(uid: UInt32) -> (total: Int, user: Int) {
        counts.withLock { counts in
            counts.total += 1
            let user = counts.byUser[uid, default: 0] + 1
            counts.byUser[uid] = user
            total.store(counts.total, ordering: .relaxed)
            changeCount.add(1, ordering: .relaxed)
            return (counts.total, user)
        }
    }

    func closed(uid: UInt32) {
        counts.withLock { counts in
            counts.total -= 1
            let user = counts.byUser[uid, default: 1] - 1
            counts.byUser[uid] = user > 0 ? user : nil
            total.store(counts.total, ordering: .relaxed)
            changeCount.add(1, ordering: .relaxed)
        }
    }

    public var current: Int { total.load(ordering: .relaxed) }

    /// Connections opened or closed since the daemon started: unchanged between two looks means
    /// none came or went.
    public var changes: Int { changeCount.load(ordering: .relaxed) }

    /// Connections open now for `uid`.
    public func current(uid: UInt32) -> Int { counts.withLock { $0.byUser[uid, default: 0] } }
}
