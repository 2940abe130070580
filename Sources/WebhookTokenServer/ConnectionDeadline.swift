import NIOCore
import NIOHTTP1
import WebhookTokenProtocol

/// One connection of the token or proxy socket in its event loop's list (``OpenConnections``):
/// where its request stands, the deadline that follows from it — the same rules on both sockets —
/// and what happens when the deadline passes or the socket shuts down. Its handler tells it when
/// the connection comes and goes, when a read ends, and when a request's head and end arrive;
/// the answer's end is written through ``endAnswer(keepingAlive:_:)``.
///
/// | phase | deadline | when it passes |
/// |---|---|---|
/// | idle: opened, or its last answer ended | `idle_timeout` | close without a word |
/// | a head begun: a read brought bytes but no head | `header_timeout` from that read | `408`, close |
/// | a request's body arriving | `idle_timeout` from the last read | close |
/// | the request complete, its answer under way | none: the answer's own bound (a long-poll's `wait`, the proxy's `timeout`) | — |
/// | closing: the last answer written, the close waiting for the write | `idle_timeout` | close |
///
/// A head is seen only once complete (NIO's decoder), so "begun" is a read that ends without one
/// while the connection is idle; bytes after a complete request in the same read are timed from
/// the next read, or by the idle timeout.
final class ConnectionDeadline: OpenConnections.Member {
    private enum Phase { case idle, head, body, answering, closing }

    private let connections: OpenConnections
    private var context: ChannelHandlerContext?
    /// The connection's event loop's list, while the connection is active.
    private var listed: OpenConnections.OnEventLoop?
    var slot: Int?
    private(set) var deadline = NIODeadline.distantFuture
    private var phase = Phase.idle
    /// A head arrived in the current read.
    private var headInThisRead = false
    /// An answer's end is being written: NIO's pipeline handler replays the requests it held back
    /// meanwhile, each with a read-complete that brought no new bytes.
    private var endWrites = 0
    private var quiesced = false

    init(connections: OpenConnections) {
        self.connections = connections
    }

    var limits: TokenSocketServer.Limits { connections.limits }

    // MARK: - What the handler tells it

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { list(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        list(context: context)
    }

    func channelInactive() {
        listed?.remove(self)
        listed = nil
    }

    func handlerRemoved() {
        channelInactive()
        context = nil
    }

    func readCompleted() {
        guard endWrites == 0 else { return }
        defer { headInThisRead = false }
        switch phase {
        case .idle where !headInThisRead:
            move(to: .head, in: connections.headerTimeout)
        case .body:
            move(to: .body, in: connections.idleTimeout)  // the body is still coming
        case .idle, .head, .answering, .closing:
            break
        }
    }

    func headArrived() {
        guard phase != .closing else { return }
        headInThisRead = true
        move(to: .body, in: connections.idleTimeout)
    }

    func requestEnded() {
        guard phase == .body else { return }  // a streamed upload's answer may have ended first
        phase = .answering
        deadline = .distantFuture
    }

    /// Writes an answer's end with `write`: the connection is idle after it, or closing.
    func endAnswer(keepingAlive: Bool, _ write: () -> Void) {
        // Before the end is written: writing it lets the pipeline handler pass on the next request.
        move(to: keepingAlive ? .idle : .closing, in: connections.idleTimeout)
        endWrites += 1
        write()
        endWrites -= 1
    }

    private func move(to phase: Phase, in time: TimeAmount) {
        guard let context else { return }
        self.phase = phase
        deadline = context.eventLoop.now + time
    }

    private func list(context: ChannelHandlerContext) {
        guard listed == nil else { return }
        move(to: .idle, in: connections.idleTimeout)
        let loop = connections.onEventLoop(context.eventLoop)
        listed = loop
        loop.add(self)
    }

    // MARK: - What the sweep and the shutdown ask of it

    func deadlinePassed() {
        guard let context else { return }
        switch phase {
        case .answering:
            return
        case .idle, .body, .closing:
            context.close(promise: nil)
        case .head:
            // No request is under way for the HTTP pipeline to answer: the answer goes on the
            // wire directly, below the HTTP encoder.
            let answer = ErrorResponse.raw(
                status: .requestTimeout, code: .requestTimeout,
                detail: "the request head did not arrive within the header timeout")
            guard let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
            else { return context.close(promise: nil) }
            move(to: .closing, in: connections.idleTimeout)
            encoder.writeThenClose(NIOAny(answer))
        }
    }

    func quiesce() {
        guard !quiesced else { return }
        quiesced = true
        context?.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
