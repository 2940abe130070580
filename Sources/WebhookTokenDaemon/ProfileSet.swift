import Synchronization
import WebhookTokenCore
import WebhookTokenServer

/// The profiles the daemon serves, replaceable one by one on reload.
///
/// Lookups read an immutable snapshot under a short lock. New profiles (at start and on reload)
/// are handed to the renewal service through ``started``, which runs each one's loop; a removed
/// profile's broker is shut down, which ends its loop and answers its waiting consumers, and its
/// routes answer 404 from that moment.
final class ProfileSet: Sendable {
    private struct Snapshot {
        var ordered: [ProfileRuntime] = []
        var byName: [String: ProfileRuntime] = [:]
        /// What `/v1/token` serves: "default", or the only profile.
        var unnamed: ProfileRuntime?
        var names: [String] = []

        init(_ runtimes: [ProfileRuntime]) {
            ordered = runtimes
            byName = Dictionary(uniqueKeysWithValues: runtimes.map { ($0.name, $0) })
            unnamed = byName[Configuration.Profile.defaultName] ?? (runtimes.count == 1 ? runtimes[0] : nil)
            names = runtimes.map(\.name)
        }
    }

    private let snapshot = Mutex(Snapshot([]))
    private let fatal = Mutex<(any Error)?>(nil)
    /// Every profile whose renewal loop is to run, as it is added.
    let started: AsyncStream<ProfileRuntime>
    private let continuation: AsyncStream<ProfileRuntime>.Continuation

    init() {
        (started, continuation) = AsyncStream.makeStream(of: ProfileRuntime.self)
    }

    var all: [ProfileRuntime] { snapshot.withLock { $0.ordered } }

    func runtime(named name: String) -> ProfileRuntime? { snapshot.withLock { $0.byName[name] } }

    func lookup(_ name: Substring?) -> ProfileLookup {
        snapshot.withLock { snapshot in
            guard let name else {
                return snapshot.unnamed.map { .found($0.broker) } ?? .unnamed(available: snapshot.names)
            }
            return snapshot.byName[String(name)].map { .found($0.broker) } ?? .unknown(available: snapshot.names)
        }
    }

    /// Adds (or replaces) a profile and starts its renewal loop.
    func add(_ runtime: ProfileRuntime) {
        let replaced = snapshot.withLock { snapshot -> ProfileRuntime? in
            let old = snapshot.byName[runtime.name]
            var ordered = snapshot.ordered.filter { $0.name != runtime.name } + [runtime]
            ordered.sort { Self.order($0.name, $1.name) }
            snapshot = Snapshot(ordered)
            return old
        }
        replaced?.broker.shutdown()
        continuation.yield(runtime)
    }

    /// Removes a profile: its routes answer 404 at once, its waiters `shutting_down`.
    func remove(named name: String) {
        let removed = snapshot.withLock { snapshot -> ProfileRuntime? in
            guard let removed = snapshot.byName[name] else { return nil }
            snapshot = Snapshot(snapshot.ordered.filter { $0.name != name })
            return removed
        }
        removed?.broker.shutdown()
    }

    /// Stops every profile and the stream of new ones.
    func shutdown() {
        for runtime in all { runtime.broker.shutdown() }
        continuation.finish()
    }

    /// Stops the daemon with `error` (every profile was refused on its first fetch).
    func fail(_ error: any Error) {
        fatal.withLock { $0 = error }
        shutdown()
    }

    var fatalError: (any Error)? { fatal.withLock { $0 } }

    /// "default" first, then by name.
    static func order(_ a: String, _ b: String) -> Bool {
        let defaultName = Configuration.Profile.defaultName
        if a == defaultName { return b != defaultName }
        if b == defaultName { return false }
        return a < b
    }

    /// The status of every profile.
    func status() -> DaemonStatus {
        DaemonStatus(profiles: all.map { .init(name: $0.name, status: $0.broker.status()) })
    }
}
