import Synchronization

/// Open socket connections, for the connection limit and the metrics.
public final class ConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    /// Counts a new connection; returns the number now open, this one included.
    func open() -> Int {
        count.wrappingAdd(1, ordering: .relaxed).newValue
    }

    func closed() {
        count.wrappingSubtract(1, ordering: .relaxed)
    }

    public var current: Int { count.load(ordering: .relaxed) }
}
