import NIOCore

/// The whole pipeline of a connection the server will not serve — over a connection limit, or
/// from a peer `[access]` refuses: as soon as it is accepted it gets its error answer, without
/// waiting for a request, and is closed.
///
/// The close waits for the peer's request (or a short linger): a client typically connects and
/// writes its request at once, and closing before that request arrives would make its write fail
/// with `EPIPE` before it reads the answer — it would report "unreachable" instead of the reason.
final class ConnectionRejector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the connection stays open for the peer's request after the answer was sent.
    static let linger = TimeAmount.milliseconds(200)

    private let response: ByteBuffer
    private var closing = false

    init(response: ByteBuffer) {
        self.response = response
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.linger) {
            let (handler, context) = loopBound.value
            handler.close(context: context)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        close(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context)
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }
}
