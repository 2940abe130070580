import AsyncHTTPClient
import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL
import Synchronization
public import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Talks to the OAuth 2.0 token endpoint over HTTPS with AsyncHTTPClient.
///
/// TLS is always verified (against the system roots plus `ca_file`), redirects are never followed
/// (a redirect would re-send the client secret somewhere the operator did not name), response
/// bodies are read up to ``TokenResponse/maximumBodySize`` only, and each request as a whole —
/// connect, send, headers, body — is bounded by the configured timeout.
///
/// One `HTTPClient` serves the fetches of this instance, and each request asks for
/// `Connection: close`: a fetch happens every ~45 minutes, so a pooled connection would be closed
/// by the server long before the next one anyway, and none is left open between fetches.
///
/// The client is not shut down after each fetch, as it once was: `HTTPClient.shutdown` reports on a
/// libdispatch queue, and the first libdispatch work item starts libdispatch's worker-pool monitor,
/// which then wakes the idle daemon every second for the rest of its life. Only a fetch that timed
/// out still shuts its client down (and the next fetch gets a new one): AsyncHTTPClient closes a
/// cancelled request's connection only eventually, and shutting the client down is what guarantees
/// that the abandoned connection is closed before the retry starts, so that at most one token
/// request is ever in flight. A daemon whose endpoint once hung thus wakes every second from then
/// on, as every daemon did before.
public final class TokenEndpointClient: TokenFetching {
    private let configuration: HTTPClient.Configuration
    /// The client for the next fetch; replaced after a timeout.
    private let httpClient: Mutex<HTTPClient>
    private let eventLoopGroup: any EventLoopGroup
    private let timeout: Duration

    /// - Parameters:
    ///   - caFile: an extra PEM trust root, in addition to the system's.
    ///   - timeout: the longest one request may take from start to last byte.
    public init(
        caFile: String?, timeout: Duration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        // Closing a connection waits this long for the peer's TLS close_notify. The default 5 s
        // would hold the renewal loop when an endpoint hangs; the token exchange is over by then.
        tls.shutdownTimeout = .milliseconds(200)
        if let caFile {
            // Load eagerly so that an unreadable or malformed file is a start-up error, not a fetch error.
            let certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            tls.additionalTrustRoots = [.certificates(certificates)]
        }
        let timeAmount = TimeAmount.nanoseconds(Int64(timeout.seconds * 1e9))
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: timeAmount, read: timeAmount),
            decompression: .disabled
        )
        // Fail a request at the first failed connection attempt: the renewal policy owns retries
        // and their backoff, and needs the real cause (refused, TLS, DNS) rather than a timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        self.configuration = configuration
        self.httpClient = Mutex(Self.makeClient(configuration, eventLoopGroup))
        self.eventLoopGroup = eventLoopGroup
        self.timeout = timeout
    }

    deinit {
        httpClient.withLock { $0 }.shutdown { _ in }
    }

    private static func makeClient(
        _ configuration: HTTPClient.Configuration, _ group: any EventLoopGroup
    ) -> HTTPClient {
        HTTPClient(eventLoopGroup: group, configuration: configuration, backgroundActivityLogger: silentLogger)
    }

    public func fetch(_ request: TokenRequest, scope: String) async -> Result<IssuedToken, FetchFailure> {
        let client = httpClient.withLock { $0 }
        let result = await fetch(request, scope: scope, using: client)
        if case .failure(let failure) = result, failure.kind == .timeout {
            let fresh = Self.makeClient(configuration, eventLoopGroup)
            httpClient.withLock { $0 = fresh }
            try? await client.shutdown()
        }
        return result
    }

    private func fetch(_ request: TokenRequest, scope: String, using httpClient: HTTPClient) async -> Result<
        IssuedToken, FetchFailure
    > {
        let timeout = self.timeout
        // The whole exchange races a timer: AsyncHTTPClient's deadline covers the head, and a
        // server dripping the body one byte a second must not hold the renewal loop either.
        return await withTaskGroup(of: Result<IssuedToken, FetchFailure>?.self) { group in
            group.addTask { await self.exchange(request, scope: scope, using: httpClient) }
            group.addTask {
                await sleepOnEventLoop(for: timeout, on: self.eventLoopGroup.next())
                if Task.isCancelled { return nil }
                return .failure(
                    FetchFailure(
                        kind: .timeout, severity: .transient,
                        detail: "endpoint did not answer within \(DurationSyntax.format(timeout))"))
            }
            var outcome: Result<IssuedToken, FetchFailure>?
            while let next = await group.next() {
                if let next {
                    outcome = next
                    break
                }
            }
            group.cancelAll()
            return outcome
                ?? .failure(FetchFailure(kind: .network, severity: .transient, detail: "token request was cancelled"))
        }
    }

    private func exchange(_ request: TokenRequest, scope: String, using httpClient: HTTPClient) async -> Result<
        IssuedToken, FetchFailure
    > {
        var httpRequest = HTTPClientRequest(url: request.url.description)
        httpRequest.method = .POST
        for header in request.headers {
            httpRequest.headers.add(name: header.name, value: header.value)
        }
        httpRequest.headers.add(name: "User-Agent", value: "webhook-tokend/\(DaemonVersion.string)")
        httpRequest.headers.add(name: "Connection", value: "close")
        httpRequest.body = .bytes(ByteBuffer(string: request.body))
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        do {
            let response = try await httpClient.execute(httpRequest, deadline: deadline, logger: Self.silentLogger)
            let body: ByteBuffer
            do {
                body = try await response.body.collect(upTo: TokenResponse.maximumBodySize)
            } catch is NIOTooManyBytesError {
                return .failure(
                    FetchFailure(
                        kind: .responseTooLarge, severity: .transient, httpStatus: Int(response.status.code),
                        detail:
                            "endpoint answered \(response.status.code) with a body over \(TokenResponse.maximumBodySize) bytes"
                    ))
            }
            return TokenResponse.interpret(
                status: Int(response.status.code),
                contentType: response.headers.first(name: "Content-Type"),
                retryAfter: response.headers.first(name: "Retry-After"),
                location: response.headers.first(name: "Location"),
                body: Array(body.readableBytesView),
                requestedScope: scope)
        } catch {
            return .failure(Self.classify(error))
        }
    }

    /// AsyncHTTPClient logs requests at trace level with their headers: the Authorization header
    /// carries the client secret, so its logger is silent whatever the daemon's level.
    private static let silentLogger = Logger(
        label: "webhook-tokend.http-client", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Maps transport errors to failure classes. All are transient: the network and the endpoint's
    /// TLS set-up heal without a configuration change (a TLS error is reported with its cause).
    public static func classify(_ error: any Error) -> FetchFailure {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .writeTimeout, .deadlineExceeded:
                return FetchFailure(
                    kind: .timeout, severity: .transient, detail: "endpoint did not answer in time (\(error))")
            case .remoteConnectionClosed:
                return FetchFailure(
                    kind: .connectionReset, severity: .transient,
                    detail: "endpoint closed the connection before answering")
            default:
                break
            }
        }
        if let error = error as? NIOConnectionError {
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                return FetchFailure(
                    kind: .nameResolution, severity: .transient,
                    detail: "cannot resolve the endpoint's host name \(error.host)")
            }
            if let first = error.connectionErrors.first {
                return classify(first.error)
            }
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED:
                return FetchFailure(
                    kind: .connectionRefused, severity: .transient, detail: "endpoint unreachable (connection refused)")
            case ECONNRESET, EPIPE:
                return FetchFailure(
                    kind: .connectionReset, severity: .transient, detail: "endpoint reset the connection")
            case ETIMEDOUT:
                return FetchFailure(
                    kind: .timeout, severity: .transient, detail: "endpoint unreachable (connection timed out)")
            case ENETUNREACH, EHOSTUNREACH:
                return FetchFailure(
                    kind: .network, severity: .transient, detail: "endpoint unreachable (no route to host)")
            default:
                return FetchFailure(kind: .network, severity: .transient, detail: "network error: \(error)")
            }
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return FetchFailure(
                kind: .tls, severity: .transient, detail: "TLS handshake with the endpoint failed: \(error)")
        }
        if error is ChannelError {
            return FetchFailure(
                kind: .connectionReset, severity: .transient, detail: "connection to the endpoint failed: \(error)")
        }
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") {
            return FetchFailure(
                kind: .connectionRefused, severity: .transient, detail: "endpoint unreachable (connection refused)")
        }
        return FetchFailure(kind: .network, severity: .transient, detail: "token request failed: \(text)")
    }
}
