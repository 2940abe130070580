import NIOCore
import NIOHTTP1
import WebhookTokenProtocol

/// Answers a malformed request with `400` and closes the connection, on the proxy socket.
///
/// (The token socket's handler does this itself: its answers are written whole, in one go, so
/// it knows without watching its own writes that no answer is under way — and one handler less
/// per connection is measurably cheaper there. The proxy streams answers, so it watches.)
///
/// NIO's own `HTTPServerProtocolErrorHandler` does the same, but also writes when the parse error
/// surfaces *after* the connection was closed — as when a graceful shutdown closes a connection
/// holding half a request — which `HTTPServerPipelineHandler` treats as a fatal error. This one
/// writes only to a live connection with no response under way.
final class ProtocolErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Never
    typealias InboundOut = Never
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseInProgress = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if context.channel.isActive && !responseInProgress {
            let body = ErrorResponse.body(code: .badRequest, detail: "the request is not valid HTTP/1.1")
            var headers = HTTPHeaders(ErrorResponse.headers(code: .badRequest))
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Connection", value: "close")
            let head = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeThenClose(wrapOutboundOut(.end(nil)))
        } else {
            context.close(promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: responseInProgress = true
        case .end: responseInProgress = false
        case .body: break
        }
        context.write(data, promise: promise)
    }
}
