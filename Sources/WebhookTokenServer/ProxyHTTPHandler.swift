import Logging
import NIOCore
import NIOHTTP1
import WebhookTokenCore
import WebhookTokenProtocol

/// Takes the requests of one proxy connection: checks them (origin-form target, allowed path,
/// body size, the peer's access), keeps the body, and hands each to a ``ProxyExchange``.
///
/// Sits behind NIO's `HTTPServerPipelineHandler`, which holds pipelined requests back until the
/// current answer has ended, so one exchange runs per connection at a time. The header and idle
/// timeouts are the token socket's (``ConnectionDeadline``); an exchange is bounded by the proxy's
/// `timeout`.
final class ProxyHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, DeadlineKeeping {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let setup: ProxySocketServer.Setup
    private let peer: PeerCredentials?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    /// Why the current request is refused, decided at its head and answered at its end.
    private var refusal: ProxyError?
    /// The body of a request larger than `max_request_body`, going upstream as it arrives.
    private var upload: ProxyUpload?
    /// The exchange under way, cancelled if the consumer goes away.
    private var exchange: Task<Void, Never>?

    let deadline: ConnectionDeadline

    init(setup: ProxySocketServer.Setup, peer: PeerCredentials?, deadline: ConnectionDeadline) {
        self.setup = setup
        self.peer = peer
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            deadline.headArrived()
            self.head = head
            body = nil
            upload = nil
            refusal = check(head)
            // curl and others wait for this (a second, by default) before sending a body.
            if refusal == nil,
                head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
            {
                let interim = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
        case .body(var chunk):
            guard let head, refusal == nil else { return }
            if let upload { return upload.append(chunk) }
            if (body?.readableBytes ?? 0) + chunk.readableBytes <= setup.proxy.maximumRequestBody {
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
                return
            }
            // Too large to keep for a replay: it goes upstream as it arrives.
            let upload = ProxyUpload(channel: context.channel)
            if let body { upload.append(body) }
            upload.append(chunk)
            body = nil
            self.upload = upload
            let length = head.headers.first(name: "Content-Length").flatMap(Int.init)
            start(head, body: .streamed(upload, length: length), context: context)
        case .end:
            deadline.requestEnded()
            if let upload {
                upload.finish()
                self.upload = nil
                head = nil
                return
            }
            guard let head else { return }
            self.head = nil
            if let refusal {
                setup.observer.proxyFailed(profile: setup.profile, code: refusal.code)
                ProxyExchange.log(setup: setup, peer: peer, head: head, status: refusal.status.code, started: .now)
                return ProxyResponseWriter(context: context, request: head, deadline: deadline).writeError(
                    status: refusal.status, code: refusal.code, detail: refusal.detail, extraHeaders: [],
                    close: refusal.code == .peerNotAllowed)
            }
            start(head, body: body.map { .kept($0) } ?? .none, context: context)
            body = nil
        }
    }

    /// Why `head` may not go upstream, if it may not.
    private func check(_ head: HTTPRequestHead) -> ProxyError? {
        guard setup.access.permits(peer, profile: setup.profile) else {
            setup.deniedPeers.record(peer: peer, logger: setup.logger)
            return ProxyError(status: .forbidden, code: .peerNotAllowed, detail: AccessRefusal.detail(peer: peer))
        }
        guard head.method != .CONNECT else {
            return ProxyError(
                status: .methodNotAllowed, code: .methodNotAllowed,
                detail: "CONNECT is not supported: this proxy calls \(setup.proxy.upstreamOrigin) only")
        }
        guard head.uri.hasPrefix("/") else {
            return ProxyError(
                status: .badRequest, code: .targetNotAllowed,
                detail: "send origin-form requests (GET /path HTTP/1.1): this proxy calls "
                    + "\(setup.proxy.upstreamOrigin) only")
        }
        let path = head.uri.prefix { $0 != "?" }
        guard setup.proxy.allows(path: path) else {
            return ProxyError(
                status: .forbidden, code: .pathNotAllowed,
                detail: "\(path) is outside the allowed path prefixes: "
                    + setup.proxy.allowedPathPrefixes.joined(separator: ", "))
        }
        return nil
    }

    private func start(_ head: HTTPRequestHead, body: ProxyExchange.Body, context: ChannelHandlerContext) {
        let writer = ProxyResponseWriter(
            context: context, request: head, deadline: deadline, streamedBody: body.isStreamed)
        let request = ProxyExchange.Request(head: head, body: body, peerUID: peer?.uid)
        let (setup, peer) = (self.setup, self.peer)
        exchange = Task {
            await ProxyExchange(setup: setup, peer: peer, writer: writer).run(request)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.channelInactive()
        upload?.finish(failed: true)
        upload = nil
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
    private let deadline: NIOLoopBound<ConnectionDeadline>
    private let eventLoop: any EventLoop
    let keepAlive: Bool
    let version: HTTPVersion
    let isHead: Bool

    /// - Parameter streamedBody: the request's body is still arriving, perhaps: the connection is
    ///   closed after the answer, as it cannot be told where the next request starts.
    init(
        context: ChannelHandlerContext, request: HTTPRequestHead, deadline: ConnectionDeadline,
        streamedBody: Bool = false
    ) {
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.deadline = NIOLoopBound(deadline, eventLoop: context.eventLoop)
        self.eventLoop = context.eventLoop
        keepAlive = request.isKeepAlive && !streamedBody
        version = request.version
        isHead = request.method == .HEAD
    }

    /// Waits for the consumer to take the part. When the exchange is cancelled (its `timeout`
    /// passed, or the consumer left) while a consumer that stopped reading holds the write, the
    /// connection is closed, which fails the write: the exchange ends instead of waiting forever.
    func write(_ part: HTTPServerResponsePart) async throws {
        let (context, eventLoop) = (self.context, self.eventLoop)
        try await withTaskCancellationHandler {
            try await eventLoop.flatSubmit { context.value.writeAndFlush(NIOAny(part)) }.get()
        } onCancel: {
            eventLoop.execute { context.value.close(promise: nil) }
        }
    }

    /// The last part; closes the connection after it unless the consumer keeps it alive.
    func end(close: Bool = false) {
        let (context, deadline, keepAlive) = (self.context, self.deadline, self.keepAlive && !close)
        eventLoop.execute {
            deadline.value.endAnswer(keepingAlive: keepAlive) {
                if keepAlive {
                    context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
                } else {
                    context.value.writeThenClose(NIOAny(HTTPServerResponsePart.end(nil)))
                }
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
