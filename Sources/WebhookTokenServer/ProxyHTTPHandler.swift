import Logging
import NIOCore
import NIOHTTP1
import WebhookTokenCore
import WebhookTokenProtocol

/// Takes the requests of one proxy connection: checks them (origin-form target, allowed path,
/// body size, the peer's access), keeps the body, and hands each to a ``ProxyExchange``.
///
/// Sits behind NIO's `HTTPServerPipelineHandler`, which holds pipelined requests back until the
/// current answer has ended, so one exchange runs per connection at a time.
final class ProxyHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let setup: ProxySocketServer.Setup
    private let peer: PeerCredentials?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false
    /// The exchange under way, cancelled if the consumer goes away.
    private var exchange: Task<Void, Never>?

    init(setup: ProxySocketServer.Setup, peer: PeerCredentials?) {
        self.setup = setup
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
            bodyTooLarge = false
            // curl and others wait for this (a second, by default) before sending a body.
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                let interim = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > setup.proxy.maximumRequestBody {
                bodyTooLarge = true
                body = nil
            } else if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            handle(head, context: context)
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let writer = ProxyResponseWriter(context: context, request: head)
        let fail = { (status: HTTPResponseStatus, code: ErrorCode, detail: String, close: Bool) in
            self.setup.observer.proxyFailed(profile: self.setup.profile, code: code)
            ProxyExchange.log(setup: self.setup, peer: self.peer, head: head, status: status.code, started: .now)
            writer.writeError(status: status, code: code, detail: detail, extraHeaders: [], close: close)
        }
        guard setup.access.permits(peer, profile: setup.profile) else {
            setup.deniedPeers.record(peer: peer, logger: setup.logger)
            return fail(.forbidden, .peerNotAllowed, AccessRefusal.detail(peer: peer), true)
        }
        guard head.method != .CONNECT else {
            return fail(
                .methodNotAllowed, .methodNotAllowed,
                "CONNECT is not supported: this proxy calls \(setup.proxy.upstreamOrigin) only", false)
        }
        guard head.uri.hasPrefix("/") else {
            return fail(
                .badRequest, .targetNotAllowed,
                "send origin-form requests (GET /path HTTP/1.1): this proxy calls \(setup.proxy.upstreamOrigin) only",
                false)
        }
        let path = head.uri.prefix { $0 != "?" }
        guard setup.proxy.allows(path: path) else {
            return fail(
                .forbidden, .pathNotAllowed,
                "\(path) is outside the allowed path prefixes: \(setup.proxy.allowedPathPrefixes.joined(separator: ", "))",
                false)
        }
        guard !bodyTooLarge else {
            return fail(
                .payloadTooLarge, .requestBodyTooLarge,
                "the request body exceeds max_request_body (\(ByteSizeSyntax.format(setup.proxy.maximumRequestBody)))",
                true)
        }
        let request = ProxyExchange.Request(head: head, body: body, peerUID: peer?.uid)
        body = nil
        let (setup, peer) = (self.setup, self.peer)
        exchange = Task {
            await ProxyExchange(setup: setup, peer: peer, writer: writer).run(request)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Idle both ways: nothing is being proxied on this connection, so it may go.
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange?.cancel()
        exchange = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        setup.logger.debug("Closing proxy connection after error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// Writes an answer on the consumer's connection from the exchange's task, one part at a time,
/// each awaited: a slow consumer slows the upstream read instead of growing a buffer.
struct ProxyResponseWriter: Sendable {
    private let context: NIOLoopBound<ChannelHandlerContext>
    private let eventLoop: any EventLoop
    let keepAlive: Bool
    let version: HTTPVersion
    let isHead: Bool

    init(context: ChannelHandlerContext, request: HTTPRequestHead) {
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.eventLoop = context.eventLoop
        keepAlive = request.isKeepAlive
        version = request.version
        isHead = request.method == .HEAD
    }

    func write(_ part: HTTPServerResponsePart) async throws {
        let context = self.context
        try await eventLoop.flatSubmit { context.value.writeAndFlush(NIOAny(part)) }.get()
    }

    /// The last part; closes the connection after it unless the consumer keeps it alive.
    func end(close: Bool = false) {
        let (context, keepAlive) = (self.context, self.keepAlive)
        eventLoop.execute {
            if keepAlive && !close {
                context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            } else {
                context.value.writeThenClose(NIOAny(HTTPServerResponsePart.end(nil)))
            }
        }
    }

    /// Ends an answer that cannot be finished (the upstream failed mid-body): closing the
    /// connection is the only way to tell the consumer that the body is incomplete.
    func abort() {
        let context = self.context
        eventLoop.execute { context.value.close(promise: nil) }
    }

    /// One of the proxy's own answers: JSON, with the code in `X-Webhook-Tokend-Error`.
    func writeError(
        status: HTTPResponseStatus, code: ErrorCode, detail: String, extraHeaders: [(String, String)], close: Bool
    ) {
        let body = ErrorResponse.body(code: code, detail: detail)
        var headers = HTTPHeaders(ErrorResponse.headers(code: code, extra: extraHeaders))
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if !keepAlive || close { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: status, headers: headers)
        let (context, isHead) = (self.context, self.isHead)
        eventLoop.execute {
            context.value.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            if !isHead {
                context.value.write(
                    NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            }
        }
        end(close: close)
    }
}
