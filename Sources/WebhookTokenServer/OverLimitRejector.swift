import NIOCore

/// The whole pipeline of a connection beyond `max_connections`: as soon as it is active it gets a
/// plain `503` with `Retry-After` and is closed, without reading what the peer sent.
final class OverLimitRejector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let response: String = {
        let body = #"{"error":"too_many_connections","detail":"the daemon serves too many connections; retry shortly"}"# + "\n"
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nRetry-After: 1\r\nConnection: close\r\n\r\n\(body)"
    }()

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.response))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
