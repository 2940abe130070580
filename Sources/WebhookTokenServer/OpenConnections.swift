import NIOCore
import NIOHTTP1
import Synchronization

/// The open connections of one socket (the token socket, or a proxy socket), kept per event loop,
/// for two things that concern all of them: the header and idle timeouts (each connection's
/// ``ConnectionDeadline``), and graceful shutdown.
///
/// A timer per connection (as NIO's `IdleStateHandler` or a request-head guard keeps) costs a
/// heap entry scheduled and cancelled for every connection; for a client that connects once per
/// call that was a sixth of the server's work per connection. Here each event loop has one coarse
/// timer, armed only while connections are open on it, that looks at every connection's deadline.
/// A timeout is so enforced within a quarter of its length (at most a second) after it passes.
/// The same lists replace NIO's `ServerQuiescingHelper`, which tracked every connection a second
/// time, with a future callback each.
final class OpenConnections: Sendable {
    let limits: TokenSocketServer.Limits
    /// `limits`' timeouts as the event loops count time.
    let headerTimeout: TimeAmount
    let idleTimeout: TimeAmount
    /// How often a loop's timer looks at its connections.
    let sweepInterval: TimeAmount
    private let loops = Mutex<[ObjectIdentifier: OnEventLoop]>([:])
    private let quiescing = Atomic<Bool>(false)

    init(limits: TokenSocketServer.Limits) {
        self.limits = limits
        headerTimeout = TokenSocketServer.Limits.timeAmount(limits.headerTimeout)
        idleTimeout = TokenSocketServer.Limits.timeAmount(limits.idleTimeout)
        let quarter = TimeAmount.nanoseconds(min(headerTimeout, idleTimeout).nanoseconds / 4)
        sweepInterval = min(.seconds(1), max(.milliseconds(5), quarter))
    }

    /// The connections of `eventLoop` (called on it, when a connection becomes active).
    func onEventLoop(_ eventLoop: any EventLoop) -> OnEventLoop {
        loops.withLock { loops in
            if let existing = loops[ObjectIdentifier(eventLoop)] { return existing }
            let created = OnEventLoop(owner: self, eventLoop: eventLoop)
            loops[ObjectIdentifier(eventLoop)] = created
            return created
        }
    }

    /// Stops a socket: closes its listening channel and quiesces its connections; the future
    /// completes when those open now have closed.
    func stop(listening channel: any Channel) -> EventLoopFuture<Void> {
        channel.close(promise: nil)
        return quiesce(on: channel.eventLoop)
    }

    /// Asks every connection to close once its current response is written (an idle one closes
    /// at once); the future completes when those open now have closed. Connections that become
    /// active later (accepted before the listening socket closed) are asked as they arrive.
    func quiesce(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        quiescing.store(true, ordering: .sequentiallyConsistent)
        let closed = loops.withLock { $0.values.map { loop in loop.eventLoop.flatSubmit { loop.quiesce() } } }
        return EventLoopFuture.andAllComplete(closed, on: eventLoop)
    }

    /// One connection's part in the lists: what the sweep and the shutdown need of it.
    protocol Member: AnyObject {
        /// Where in its loop's list it is, `nil` when not listed; kept by ``OnEventLoop``.
        var slot: Int? { get set }
        /// When it must have made progress; `.distantFuture` while a request is being answered.
        var deadline: NIODeadline { get }
        /// The deadline passed: answer and close, or just close.
        func deadlinePassed()
        /// Close after the current response (a graceful shutdown).
        func quiesce()
    }

    /// The connections of one event loop: touched only on that loop.
    final class OnEventLoop: @unchecked Sendable {
        let eventLoop: any EventLoop
        private unowned let owner: OpenConnections
        private var members: [any Member] = []
        /// Armed while connections are open here. It is left to run out rather than cancelled
        /// when the last one closes, so that a client connecting once per call arms it about
        /// once per interval, not once per connection.
        private var sweep: Scheduled<Void>?
        private var quiesced: EventLoopPromise<Void>?

        fileprivate init(owner: OpenConnections, eventLoop: any EventLoop) {
            self.owner = owner
            self.eventLoop = eventLoop
        }

        var count: Int { members.count }

        func add(_ member: any Member) {
            eventLoop.assertInEventLoop()
            member.slot = members.count
            members.append(member)
            if sweep == nil { armSweep() }
            if quiesced != nil || owner.quiescing.load(ordering: .relaxed) { member.quiesce() }
        }

        func remove(_ member: any Member) {
            eventLoop.assertInEventLoop()
            guard let slot = member.slot else { return }
            member.slot = nil
            let last = members.removeLast()
            if last !== member {
                members[slot] = last
                last.slot = slot
            }
            if members.isEmpty, let quiesced {
                self.quiesced = nil
                quiesced.succeed()
            }
        }

        fileprivate func quiesce() -> EventLoopFuture<Void> {
            if members.isEmpty { return eventLoop.makeSucceededVoidFuture() }
            let promise = quiesced ?? eventLoop.makePromise()
            quiesced = promise
            // A member may close (and leave the list) while being asked.
            for member in members { member.quiesce() }
            return promise.futureResult
        }

        private func armSweep() {
            let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
            sweep = eventLoop.scheduleTask(in: owner.sweepInterval) { loopBound.value.sweepNow() }
        }

        private func sweepNow() {
            sweep = nil
            guard !members.isEmpty else { return }
            let now = eventLoop.now
            for member in members where member.deadline <= now {
                member.deadlinePassed()
            }
            if !members.isEmpty { armSweep() }
        }
    }
}
