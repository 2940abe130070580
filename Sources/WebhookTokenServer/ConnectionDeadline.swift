import NIOCore
import NIOHTTP1
import WebhookTokenProtocol

/// One connection of the token or proxy socket in its event loop's list (``OpenConnections``):
/// its deadline, by the same rules on both sockets, and what happens when the deadline passes or
/// the socket shuts down. Its handler tells it when the connection comes and goes, when a read
/// ends, when a request's head arrives and when its answer has ended.
///
/// | state | deadline | when it passes |
/// |---|---|---|
/// | idle, after the connection opened or an answer ended | `idle_timeout` | close without a word |
/// | a head begun: a read brought bytes but no head | `header_timeout` from that read | `408`, close |
/// | a request is being answered | none | — |
///
/// A head is seen only once complete (NIO's decoder), so "begun" is a read that ends without
/// one while no request is being answered; bytes after a complete request in the same read are
/// timed from the next read, or by the idle timeout.
final class ConnectionDeadline: OpenConnections.Member {
    private let connections: OpenConnections
    private var context: ChannelHandlerContext?
    /// The connection's event loop's list, while the connection is active.
    private var listed: OpenConnections.OnEventLoop?
    var slot: Int?
    private(set) var deadline = NIODeadline.distantFuture
    /// Whether `deadline` is for a head under way (`408` when it passes) or for an idle connection.
    private var isForHead = false
    /// A request is being answered: no deadline runs.
    private var answering = false
    /// A head arrived in the current read.
    private var headInThisRead = false

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
        if headInThisRead {
            headInThisRead = false
        } else if !answering && !isForHead, let context {
            deadline = context.eventLoop.now + connections.headerTimeout
            isForHead = true
        }
    }

    func headArrived() {
        answering = true
        headInThisRead = true
        deadline = .distantFuture
        isForHead = false
    }

    /// An answer ended and the connection stays open. Called before the end is written: writing it
    /// lets NIO's pipeline handler pass on the next (pipelined) request.
    func answered() {
        guard let context else { return }
        answering = false
        deadline = context.eventLoop.now + connections.idleTimeout
    }

    private func list(context: ChannelHandlerContext) {
        guard listed == nil else { return }
        deadline = context.eventLoop.now + connections.idleTimeout
        let loop = connections.onEventLoop(context.eventLoop)
        listed = loop
        loop.add(self)
    }

    // MARK: - What the sweep and the shutdown ask of it

    func deadlinePassed() {
        guard let context, !answering else { return }
        guard isForHead else { return context.close(promise: nil) }  // idle: close without a word
        deadline = .distantFuture
        // No request is under way for the HTTP pipeline to answer: the answer goes on the wire
        // directly, below the HTTP encoder.
        let answer = ErrorResponse.raw(
            status: .requestTimeout, code: .requestTimeout,
            detail: "the request head did not arrive within the header timeout")
        guard let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) else {
            return context.close(promise: nil)
        }
        encoder.writeThenClose(NIOAny(answer))
    }

    func quiesce() {
        context?.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
