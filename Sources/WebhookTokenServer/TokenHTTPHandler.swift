import Logging
import NIOCore
import NIOHTTP1
import WebhookTokenCore
import WebhookTokenProtocol

/// Answers the HTTP/1.1 requests of one socket connection, by the routes of ``SocketRoute``.
///
/// Sits behind NIO's `HTTPServerPipelineHandler`, which serialises pipelined requests (so answers
/// go out in order) and handles quiescing on shutdown, and its request decoder, which bounds the
/// size of a head. The peer was admitted when the connection was accepted
/// (``ConnectionAdmission``); each token request is checked against its profile's `[access]` rule.
///
/// A head over 8 KiB is answered `431` here (the decoder's `HTTPParserError.headerOverflow`); the
/// header and idle timeouts are the connection's ``ConnectionDeadline``.
final class TokenHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, DeadlineKeeping {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let serving: any TokenServing
    private let logger: Logger
    private let access: SharedAccessRules
    private let deniedPeers: DeniedPeerLog
    private let observer: any ServerObserver
    let deadline: ConnectionDeadline
    /// When the current request's head arrived, for the latency metric (sampled requests only).
    private var requestStarted: ContinuousClock.Instant?
    /// Requests seen on this connection, for sampling the latency metric.
    private var requestCount = 0
    private var route: ServerRoute = .other
    /// The current request's path and query, split once.
    private var requestPath: Substring = ""
    private var requestQuery: Substring = ""
    /// Answers still to come (a refresh, the first token, a long-poll): a malformed pipelined
    /// request behind one of them closes the connection instead of being answered out of turn.
    private var deferredAnswers = 0

    private var request: HTTPRequestHead?
    /// The request announced or sent a body where none is accepted.
    private var bodyRejected = false
    /// The peer, as the kernel vouches for it (`nil` on a non-Unix socket in tests).
    private var peer: PeerCredentials?
    /// The access rules' generation the decisions below were made under.
    private var accessGeneration: Int
    /// Per profile, whether this peer may use it: one lookup per profile per connection, made
    /// again only after a reload changed the rules.
    private var permittedProfiles: [String: Bool] = [:]
    /// Whether the peer may use any profile (it was, when admitted; a reload may change that).
    private var admitted = true

    init(
        serving: any TokenServing, peer: PeerCredentials?, access: SharedAccessRules, deniedPeers: DeniedPeerLog,
        observer: any ServerObserver, connections: OpenConnections, logger: Logger
    ) {
        self.serving = serving
        self.deadline = ConnectionDeadline(connections: connections)
        self.peer = peer
        self.access = access
        self.accessGeneration = access.generation
        self.deniedPeers = deniedPeers
        self.observer = observer
        self.logger = logger
    }

    /// Forgets the decisions made under older rules. Supplementary groups are read again if the
    /// new rules name groups.
    private func refreshAccessDecisions(context: ChannelHandlerContext) {
        let generation = access.generation
        guard generation != accessGeneration else { return }
        accessGeneration = generation
        permittedProfiles = [:]
        if access.namesGroups, peer?.supplementaryGroups.isEmpty ?? false {
            if let reread = PeerCredentialsReader.read(from: context.channel, withGroups: true) { peer = reread }
        }
        admitted = access.admits(peer)
    }

    private func permits(profile: String) -> Bool {
        if let known = permittedProfiles[profile] { return known }
        let allowed = access.permits(peer, profile: profile)
        permittedProfiles[profile] = allowed
        return allowed
    }

    // MARK: - Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            deadline.headArrived()
            // One request in 16 is timed: the latency histogram needs a sample, not two clock
            // reads and a histogram observation on every request of the hot path.
            requestCount &+= 1
            requestStarted = requestCount & 15 == 1 ? .now : nil
            (requestPath, requestQuery) = Self.split(head.uri)
            route = SocketRoute.match(requestPath)?.route.metricLabel ?? .other
            request = head
            bodyRejected = Self.announcesBody(head)
        case .body:
            bodyRejected = true
        case .end:
            guard let head = request else { return }
            request = nil
            deadline.requestEnded()
            if bodyRejected {
                respondError(
                    context: context, head: head, status: .payloadTooLarge, code: .bodyNotAccepted,
                    detail: "this endpoint accepts no request body", close: true)
                return
            }
            route(context: context, head: head)
        }
    }

    private static func announcesBody(_ head: HTTPRequestHead) -> Bool {
        if head.headers.contains(name: "Transfer-Encoding") { return true }
        if let length = head.headers.first(name: "Content-Length") { return length != "0" }
        return false
    }

    // MARK: - Routing

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let (path, query) = (requestPath, requestQuery)
        refreshAccessDecisions(context: context)
        guard let (route, profileName) = SocketRoute.match(path) else {
            return respondError(
                context: context, head: head, status: .notFound, code: .notFound,
                detail: "no such endpoint \(path); the endpoints are \(SocketRoute.hint)")
        }
        guard route.methods.contains(head.method) else {
            return respondError(
                context: context, head: head, status: .methodNotAllowed, code: .methodNotAllowed,
                detail: "\(head.method) is not allowed on \(path); use \(route.allowHeader)",
                extraHeaders: [("Allow", route.allowHeader)])
        }
        switch route {
        case .token, .profileToken, .refresh, .profileRefresh:
            guard let profile = servedProfile(context: context, head: head, named: profileName) else { return }
            let raw = Self.wantsRaw(head, query)
            if route == .refresh || route == .profileRefresh {
                let peerUID = peer?.uid
                return respondLater(context: context, head: head, raw: raw) {
                    await profile.refreshToken(peerUID: peerUID)
                }
            }
            if !query.isEmpty, let wait = Self.longPoll(query) {
                guard let seconds = wait.seconds else {
                    return respondError(
                        context: context, head: head, status: .badRequest, code: .badRequest,
                        detail: "wait must be a whole number of seconds from 0 to \(Self.maximumWaitSeconds)")
                }
                let after = wait.after
                return respondLater(context: context, head: head, raw: raw) {
                    await profile.waitForChange(after: after, maxWait: .seconds(seconds))
                }
            }
            let answer = profile.currentToken()
            if case .unavailable = answer, profile.isAwaitingFirstToken {
                // The daemon has just started (perhaps by this very connection, through socket
                // activation): wait for the first token rather than send the consumer away.
                return respondLater(context: context, head: head, raw: raw) { await profile.firstToken() }
            }
            respond(context: context, head: head, answer: answer, raw: raw)
        case .status, .metrics:
            guard admitted else { return refuse(context: context, head: head) }
            if route == .metrics {
                return respond(
                    context: context, head: head, status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                    body: ByteBuffer(string: serving.metricsText()))
            }
            if query.utf8.containsBytes("format=text")
                || (Self.prefersText(head) && !query.utf8.containsBytes("format=json"))
            {
                respond(
                    context: context, head: head, status: .ok, contentType: "text/plain; charset=utf-8",
                    body: ByteBuffer(string: serving.statusText()))
            } else {
                respond(
                    context: context, head: head, status: .ok, contentType: "application/json",
                    body: ByteBuffer(string: serving.statusJSON()))
            }
        }
    }

    /// The profile a token request is for, if the peer may use it; otherwise answers the request.
    private func servedProfile(
        context: ChannelHandlerContext, head: HTTPRequestHead, named name: Substring?
    ) -> (any ProfileServing)? {
        switch serving.profile(named: name) {
        case .found(let profile):
            guard permits(profile: profile.name) else {
                refuse(context: context, head: head)
                return nil
            }
            return profile
        case .unknown(let available):
            respondError(
                context: context, head: head, status: .notFound, code: .unknownProfile,
                detail: "no profile \"\(name ?? "")\"; \(profileList(available))")
            return nil
        case .unnamed(let available):
            respondError(
                context: context, head: head, status: .notFound, code: .profileRequired,
                detail: "this daemon holds several tokens and none is \"default\": ask for /v1/tokens/NAME; "
                    + profileList(available))
            return nil
        }
    }

    /// The profiles this peer may use, for a 404: never the names of the others.
    private func profileList(_ available: [String]) -> String {
        let usable = available.filter(permits(profile:))
        return usable.isEmpty
            ? "no profile is open to uid \(peer.map { String($0.uid) } ?? "?")"
            : "profiles: \(usable.joined(separator: ", "))"
    }

    private func refuse(context: ChannelHandlerContext, head: HTTPRequestHead) {
        deniedPeers.record(peer: peer, logger: logger)
        observer.peerDenied()
        respondError(
            context: context, head: head, status: .forbidden, code: .peerNotAllowed,
            detail: AccessRefusal.detail(peer: peer), close: true)
    }

    /// The longest `?wait=` a long-poll may ask for, in seconds.
    static let maximumWaitSeconds = 300

    /// `?after=FINGERPRINT&wait=SECONDS`: `nil` without `wait`; `seconds` `nil` when it is not a
    /// number from 0 to ``maximumWaitSeconds``.
    static func longPoll(_ query: Substring) -> (after: Substring, seconds: Int64?)? {
        var after: Substring = ""
        var wait: Substring?
        for pair in query.split(separator: "&") {
            if pair.hasPrefix("after=") { after = pair.dropFirst(6) }
            if pair.hasPrefix("wait=") { wait = pair.dropFirst(5) }
        }
        guard let wait else { return nil }
        guard let seconds = Int64(wait), seconds >= 0, seconds <= maximumWaitSeconds else { return (after, nil) }
        return (after, seconds)
    }

    private static func split(_ uri: String) -> (path: Substring, query: Substring) {
        guard let mark = uri.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (uri[...], "") }
        return (uri[..<mark], uri[uri.utf8.index(after: mark)...])
    }

    // These run for every request: plain UTF-8 byte searches, because the generic
    // `StringProtocol.contains` builds a searcher (with a dictionary) on each call, which showed
    // up as 12 % of the daemon's CPU under load.

    private static func wantsRaw(_ head: HTTPRequestHead, _ query: Substring) -> Bool {
        if !query.isEmpty {
            if query.utf8.containsBytes("format=raw") { return true }
            if query.utf8.containsBytes("format=json") { return false }
        }
        return prefersText(head)
    }

    private static func prefersText(_ head: HTTPRequestHead) -> Bool {
        guard let accept = head.headers.first(name: "Accept") else { return false }
        return accept.utf8.containsBytes("text/plain") && !accept.utf8.containsBytes("application/json")
    }

    // MARK: - Responses

    /// Answers with a token that takes a while to come (a refresh, the first fetch). The HTTP
    /// pipeline holds any pipelined requests back until this response ends.
    private func respondLater(
        context: ChannelHandlerContext, head: HTTPRequestHead, raw: Bool,
        _ answer: @escaping @Sendable () async -> TokenAnswer
    ) {
        let promise = context.eventLoop.makePromise(of: TokenAnswer.self)
        promise.completeWithTask(answer)
        deferredAnswers += 1
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenSuccess { answer in
            let (handler, context) = loopBound.value
            handler.deferredAnswers -= 1
            handler.respond(context: context, head: head, answer: answer, raw: raw)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, answer: TokenAnswer, raw: Bool) {
        switch answer {
        case .token(let token, let secondsLeft, let refresh):
            var body = context.channel.allocator.buffer(
                capacity: raw ? token.raw.count : token.jsonHead.count + token.jsonTail.count + 8)
            if raw {
                body.writeBytes(token.raw)
            } else {
                body.writeBytes(token.jsonHead)
                body.writeString(String(secondsLeft))
                body.writeBytes(token.jsonTail)
            }
            var extraHeaders = [(ProtocolHeader.fingerprint, token.fingerprint)]
            if let refresh { extraHeaders.append((ProtocolHeader.refresh, refresh.headerValue)) }
            respond(
                context: context, head: head, status: .ok,
                contentType: raw ? "text/plain; charset=utf-8" : "application/json", body: body,
                extraHeaders: extraHeaders)
        case .unavailable(let code, let detail, let retryAfter):
            respondError(
                context: context, head: head, status: .serviceUnavailable, code: code, detail: detail,
                extraHeaders: [("Retry-After", String(retryAfter))])
        }
    }

    private func respondError(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, code: ErrorCode,
        detail: String, extraHeaders: [(String, String)] = [], close: Bool = false
    ) {
        respond(
            context: context, head: head, status: status, contentType: "application/json",
            body: ByteBuffer(string: ErrorResponse.body(code: code, detail: detail)),
            extraHeaders: [(ProtocolHeader.error, code.rawValue)] + extraHeaders, close: close)
    }

    private func respond(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String,
        body: ByteBuffer, extraHeaders: [(String, String)] = [], close: Bool = false
    ) {
        let keepAlive = head.isKeepAlive && !close
        observer.requestCompleted(
            route: route, status: Int(status.code), duration: requestStarted.map { $0.duration(to: .now) })
        if logger.logLevel <= .debug {
            logger.debug(
                "Request",
                metadata: [
                    "peer.uid": "\(peer.map { String($0.uid) } ?? "-")",
                    "peer.pid": "\(peer.map { String($0.pid) } ?? "-")",
                    "http.method": "\(head.method)", "http.path": "\(Self.split(head.uri).path)",
                    "http.status": "\(status.code)",
                ])
        }
        var headers = Self.noStoreHeaders
        headers.reserveCapacity(5 + extraHeaders.count)
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        deadline.endAnswer(keepingAlive: keepAlive) {
            if keepAlive {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                context.writeThenClose(wrapOutboundOut(.end(nil)))
            }
        }
    }

    /// `Cache-Control: no-store` on every answer, validated once rather than per response.
    private static let noStoreHeaders: HTTPHeaders = ["Cache-Control": "no-store"]

    /// A malformed request is answered `400` (`431` for a head over the limit) and the connection
    /// closed — but only on a live connection with no answer pending: the parse error of half a request can surface after a
    /// graceful shutdown closed the connection, and a write then would be a second answer to
    /// the pipeline handler, which treats that as fatal. (This is why NIO's own
    /// `HTTPServerProtocolErrorHandler` is not used.)
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, context.channel.isActive, deferredAnswers == 0 else {
            logger.debug("Closing socket connection after error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        if case .headerOverflow = error as? HTTPParserError {
            respondError(
                context: context, head: head, status: .requestHeaderFieldsTooLarge, code: .requestHeadTooLarge,
                detail: "the request head exceeds \(deadline.limits.maximumHeadBytes) bytes", close: true)
        } else {
            respondError(
                context: context, head: head, status: .badRequest, code: .badRequest,
                detail: "the request is not valid HTTP/1.1", close: true)
        }
    }
}

extension Collection where Element == UInt8 {
    /// Whether the ASCII `needle` occurs in these bytes.
    func containsBytes(_ needle: StaticString) -> Bool {
        let pattern = UnsafeBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
        guard let first = pattern.first, count >= pattern.count else { return false }
        var index = startIndex
        while let start = self[index...].firstIndex(of: first) {
            var candidate = start
            var matched = true
            for byte in pattern {
                guard candidate != endIndex, self[candidate] == byte else {
                    matched = false
                    break
                }
                candidate = self.index(after: candidate)
            }
            if matched { return true }
            index = self.index(after: start)
        }
        return false
    }
}
