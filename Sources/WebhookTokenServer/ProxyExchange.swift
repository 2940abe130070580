import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import WebhookTokenCore
import WebhookTokenEndpoint
import WebhookTokenProtocol

/// One proxied request: the profile's token added, sent upstream, and the answer streamed back —
/// after one replay with a fresh token if the upstream rejected the first one (401/403).
///
/// The fresh token comes from the profile's single-flight, rate-limited refresh, so a hundred
/// consumers hitting the same expired token cause one token request; a consumer arriving after
/// that refresh finds the new token already held and replays without asking. It never loops: the
/// second answer is passed back as it is.
struct ProxyExchange: Sendable {
    struct Request: Sendable {
        let head: HTTPRequestHead
        let body: Body
        let peerUID: UInt32?
    }

    /// A request's body: kept whole (at most `max_request_body`; it can be replayed), or passed
    /// upstream as it arrives (it cannot).
    enum Body: Sendable {
        case none
        case kept(ByteBuffer)
        case streamed(ProxyUpload, length: Int?)

        var isStreamed: Bool {
            if case .streamed = self { return true }
            return false
        }
    }

    let setup: ProxySocketServer.Setup
    let peer: PeerCredentials?
    let writer: ProxyResponseWriter

    /// The largest 401/403 body held back while deciding whether to replay; a larger one is
    /// passed back as it is.
    static let maximumRejectionBody = 64 * 1024

    func run(_ request: Request) async {
        let started = ContinuousClock.now
        let progress = Progress(deadline: started + setup.proxy.timeout)
        var status: UInt = 0
        do {
            // The exchange races the proxy's timeout, which each upstream request restarts.
            let (upstreamStatus, upstreamWait) = try await withThrowingTaskGroup(of: (UInt, Duration).self) { group in
                group.addTask { try await self.exchange(request, progress: progress) }
                group.addTask {
                    try await progress.sleepUntilDeadline()
                    throw ProxyError(
                        status: .gatewayTimeout, code: .upstreamTimeout,
                        detail: "\(self.setup.upstream.origin) did not answer within "
                            + "\(DurationSyntax.format(self.setup.proxy.timeout)) (the proxy's timeout)")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            status = upstreamStatus
            setup.observer.proxied(profile: setup.profile, upstreamStatus: Int(status))
            let answered = progress.headSentAt ?? .now
            setup.observer.proxyOverhead(
                profile: setup.profile, duration: started.duration(to: answered) - upstreamWait)
        } catch let failure as ProxyError where !progress.headSent {
            setup.observer.proxyFailed(profile: setup.profile, code: failure.code)
            writer.writeError(
                status: failure.status, code: failure.code, detail: failure.detail, extraHeaders: failure.extraHeaders,
                close: false)
            status = failure.status.code
        } catch {
            // The consumer went away, or the upstream failed or ran out of time mid-body: closing
            // the connection is all that can be said.
            if let failure = error as? ProxyError {
                setup.observer.proxyFailed(profile: setup.profile, code: failure.code)
            }
            writer.abort()
        }
        Self.log(setup: setup, peer: peer, head: request.head, status: status, started: started)
    }

    /// How far an exchange has got, shared with its timer.
    final class Progress: Sendable {
        private let state: Mutex<(deadline: ContinuousClock.Instant, headSentAt: ContinuousClock.Instant?)>

        init(deadline: ContinuousClock.Instant) {
            state = Mutex((deadline, nil))
        }

        var headSent: Bool { headSentAt != nil }
        var headSentAt: ContinuousClock.Instant? { state.withLock { $0.headSentAt } }
        func sentHead() { state.withLock { $0.headSentAt = .now } }
        func restart(timeout: Duration) { state.withLock { $0.deadline = .now + timeout } }

        /// Returns when the deadline, however often restarted, has passed.
        func sleepUntilDeadline() async throws {
            while true {
                let deadline = state.withLock { $0.deadline }
                if deadline <= .now { return }
                try await Task.sleep(until: deadline)
            }
        }
    }

    /// Sends the request, replays it once if the token was rejected, and streams the answer back;
    /// returns the upstream status passed back.
    private func exchange(_ request: Request, progress: Progress) async throws -> (UInt, Duration) {
        var upstreamWait = Duration.zero
        guard case .found(let profile) = setup.serving.profile(named: Substring(setup.profile)) else {
            throw ProxyError(
                status: .serviceUnavailable, code: .noValidToken,
                detail: "the profile \(setup.profile) is no longer configured", extraHeaders: [("Retry-After", "5")])
        }
        let token = try Self.token(await Self.currentToken(of: profile))
        progress.restart(timeout: setup.proxy.timeout)
        var (response, waited) = try await send(request, token: token)
        upstreamWait += waited
        var held: [ByteBuffer] = []
        var iterator = response.body.makeAsyncIterator()
        if response.status == .unauthorized || response.status == .forbidden, !request.body.isStreamed {
            // Hold the rejection back while deciding: if no fresh token comes, it is the answer.
            var size = 0
            var complete = false
            while size <= Self.maximumRejectionBody {
                guard let chunk = try await iterator.next() else {
                    complete = true
                    break
                }
                size += chunk.readableBytes
                held.append(chunk)
            }
            if complete, let fresh = await freshToken(after: token, from: profile, peerUID: request.peerUID) {
                setup.observer.replayed(profile: setup.profile)
                setup.logger.info(
                    "Replaying a request the upstream rejected, with a fresh token",
                    metadata: ["http.status": "\(response.status.code)", "token.fingerprint": "\(fresh.fingerprint)"])
                progress.restart(timeout: setup.proxy.timeout)
                (response, waited) = try await send(request, token: fresh)
                upstreamWait += waited
                held = []
                iterator = response.body.makeAsyncIterator()
            }
        }
        try await stream(response, held: held, rest: &iterator, progress: progress)
        return (response.status.code, upstreamWait)
    }

    /// The token now, or — when the daemon has just started — once the first fetch has ended.
    private static func currentToken(of profile: any ProfileServing) async -> TokenAnswer {
        let answer = profile.currentToken()
        if case .unavailable = answer, profile.isAwaitingFirstToken { return await profile.firstToken() }
        return answer
    }

    private static func token(_ answer: TokenAnswer) throws(ProxyError) -> PresentedToken {
        switch answer {
        case .token(let token, _, _):
            return token
        case .unavailable(let code, let detail, let retryAfter):
            throw ProxyError(
                status: .serviceUnavailable, code: code, detail: detail,
                extraHeaders: [("Retry-After", String(retryAfter))])
        }
    }

    /// A token other than `rejected`: the one held now if someone already refreshed, else the
    /// outcome of a refresh; `nil` if there is none (rate-limited, backing off, failed).
    private func freshToken(
        after rejected: PresentedToken, from profile: any ProfileServing, peerUID: UInt32?
    ) async -> PresentedToken? {
        if case .token(let current, _, _) = profile.currentToken(), current.fingerprint != rejected.fingerprint {
            return current
        }
        if case .token(let refreshed, _, _) = await profile.refreshToken(peerUID: peerUID),
            refreshed.fingerprint != rejected.fingerprint
        {
            return refreshed
        }
        return nil
    }

    /// One upstream request; its answer's head and the time spent waiting for it.
    private func send(_ request: Request, token: PresentedToken) async throws -> (HTTPClientResponse, Duration) {
        var outgoing = HTTPClientRequest(url: setup.upstream.origin + request.head.uri)
        outgoing.method = request.head.method
        for (name, value) in ProxyUpstream.filtered(request.head.headers, dropping: ProxyUpstream.droppedRequestHeaders)
        {
            outgoing.headers.add(name: name, value: value)
        }
        outgoing.headers.add(name: "Authorization", value: "Bearer " + String(decoding: token.raw, as: UTF8.self))
        switch request.body {
        case .none: break
        case .kept(let body): outgoing.body = .bytes(body)
        case .streamed(let upload, let length):
            outgoing.body = .stream(upload, length: length.map { .known(Int64($0)) } ?? .unknown)
        }
        let sent = ContinuousClock.now
        let deadline = NIODeadline.now() + TokenSocketServer.Limits.timeAmount(setup.proxy.timeout)
        do {
            let response = try await setup.upstream.client.execute(
                outgoing, deadline: deadline, logger: ProxyUpstream.silentLogger)
            return (response, sent.duration(to: .now))
        } catch {
            if Task.isCancelled { throw CancellationError() }
            let failure = TokenEndpointClient.classify(error)
            let timeout = DurationSyntax.format(setup.proxy.timeout)
            if failure.kind == .timeout {
                throw ProxyError(
                    status: .gatewayTimeout, code: .upstreamTimeout,
                    detail: "\(setup.upstream.origin) did not answer within \(timeout) (the proxy's timeout)")
            }
            throw ProxyError(
                status: .badGateway, code: .upstreamUnreachable,
                detail: "\(setup.upstream.origin) could not be reached: \(failure.detail)")
        }
    }

    /// Passes the answer back: its head (hop-by-hop headers dropped), the held chunks, then the
    /// rest as it arrives.
    private func stream(
        _ response: HTTPClientResponse, held: [ByteBuffer], rest iterator: inout HTTPClientResponse.Body.AsyncIterator,
        progress: Progress
    ) async throws {
        var headers = HTTPHeaders(
            ProxyUpstream.filtered(response.headers, dropping: ProxyUpstream.droppedResponseHeaders))
        if !writer.keepAlive { headers.add(name: "Connection", value: "close") }
        progress.sentHead()
        try await writer.write(
            .head(HTTPResponseHead(version: writer.version, status: response.status, headers: headers)))
        for chunk in held { try await writer.write(.body(.byteBuffer(chunk))) }
        while let chunk = try await iterator.next() {
            try await writer.write(.body(.byteBuffer(chunk)))
        }
        // A body cut short by the timeout must not look complete.
        try Task.checkCancellation()
        writer.end()
    }

    /// The access log, at debug level: who, what (the path without its query), the outcome, how
    /// long. Never the token.
    static func log(
        setup: ProxySocketServer.Setup, peer: PeerCredentials?, head: HTTPRequestHead, status: UInt,
        started: ContinuousClock.Instant
    ) {
        guard setup.logger.logLevel <= .debug else { return }
        let duration = started.duration(to: .now)
        setup.logger.debug(
            "Proxied request",
            metadata: [
                "peer.uid": "\(peer.map { String($0.uid) } ?? "-")", "http.method": "\(head.method)",
                "http.path": "\(head.uri.prefix { $0 != "?" })", "http.status": "\(status)",
                "duration_ms":
                    "\(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)",
            ])
    }
}

/// An answer the proxy gives itself, instead of the upstream's.
struct ProxyError: Error {
    let status: HTTPResponseStatus
    let code: ErrorCode
    let detail: String
    var extraHeaders: [(String, String)] = []
}
