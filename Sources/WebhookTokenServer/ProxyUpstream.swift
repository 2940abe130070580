import AsyncHTTPClient
import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL
public import WebhookTokenCore
import WebhookTokenEndpoint

/// The connection pool to one proxy's upstream, verified with the profile's trust roots.
///
/// Pooled, unlike the token client's one-shot connections: consumers call the API far more often
/// than the daemon fetches tokens, and a kept-alive TLS connection saves a handshake per call.
/// Redirects are passed back, never followed (a redirect would carry the token elsewhere);
/// bodies pass through as they are (no decompression).
public final class ProxyUpstream: Sendable {
    let client: HTTPClient
    /// `scheme://host[:port]`, without a trailing slash.
    let origin: String

    public init(
        proxy: Configuration.Proxy, caFile: String?,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        tls.shutdownTimeout = .milliseconds(200)
        if let caFile {
            tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(caFile))]
        }
        let timeout = TokenSocketServer.Limits.timeAmount(proxy.timeout)
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: timeout, read: timeout),
            decompression: .disabled)
        // A refused or failing upstream is reported at once (502), not retried until the timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        client = HTTPClient(
            eventLoopGroup: eventLoopGroup, configuration: configuration, backgroundActivityLogger: Self.silentLogger)
        origin = proxy.upstreamOrigin
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// AsyncHTTPClient logs requests with their headers at trace level: the Authorization header
    /// carries the token, so its logger is silent whatever the daemon's level.
    static let silentLogger = Logger(label: "webhook-tokend.proxy-client", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Headers that describe one connection rather than the message (RFC 9110 §7.6.1), and those
    /// the proxy sets itself or must never pass on: the consumer's credentials and cookies.
    static let droppedRequestHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect",
        "host", "content-length", "authorization", "proxy-authorization", "cookie",
    ]

    static let droppedResponseHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate",
    ]

    /// `headers` without the `dropped` ones and those the `Connection` header names.
    static func filtered(_ headers: HTTPHeaders, dropping dropped: Set<String>) -> [(String, String)] {
        let named = Set(headers[canonicalForm: "connection"].map { $0.lowercased() })
        return headers.filter { name, _ in
            let lower = name.lowercased()
            return !dropped.contains(lower) && !named.contains(lower)
        }
    }
}
