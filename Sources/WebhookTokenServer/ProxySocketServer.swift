public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import ServiceLifecycle
public import WebhookTokenCore

/// A profile's authenticating proxy socket (`[proxy]`), as a ServiceLifecycle service: consumers
/// make their API calls here, and the daemon adds the profile's token on the way upstream.
///
/// Created, admitted and shut down like the token socket — the same socket file handling, the
/// same `SO_PEERCRED` admission with the per-uid share of `max_connections` — but only the
/// profile's own `[access]` rule lets a peer in.
public final class ProxySocketServer: Service {
    private let serverChannel: any Channel
    private let connections: OpenConnections
    private let socketFile: SocketFile?
    private let upstream: ProxyUpstream
    private let logger: Logger

    private init(
        serverChannel: any Channel, connections: OpenConnections, socketFile: SocketFile?, upstream: ProxyUpstream,
        logger: Logger
    ) {
        self.serverChannel = serverChannel
        self.connections = connections
        self.socketFile = socketFile
        self.upstream = upstream
        self.logger = logger
    }

    /// What one proxy needs to serve a request: shared by its connections.
    struct Setup: Sendable {
        let profile: String
        let proxy: Configuration.Proxy
        let upstream: ProxyUpstream
        let serving: any TokenServing
        let access: SharedAccessRules
        let deniedPeers: DeniedPeerLog
        let observer: any ProxyObserver
        let logger: Logger
    }

    public static func start(
        profile: String, proxy: Configuration.Proxy, upstream: ProxyUpstream, listener: TokenSocketServer.Listener,
        serving: any TokenServing, limits: TokenSocketServer.Limits = .init(), access: SharedAccessRules,
        deniedPeers: DeniedPeerLog = DeniedPeerLog(), connections: ConnectionCounter = ConnectionCounter(),
        serverObserver: any ServerObserver = NoServerObserver(), observer: any ProxyObserver = NoProxyObserver(),
        logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ProxySocketServer {
        var logger = logger
        logger[metadataKey: "profile"] = "\(profile)"
        let open = OpenConnections(limits: limits)
        let admission = ConnectionAdmission(
            limits: limits, access: access, profile: profile, deniedPeers: deniedPeers, connections: connections,
            observer: serverObserver, logger: logger)
        let setup = Setup(
            profile: profile, proxy: proxy, upstream: upstream, serving: serving, access: access,
            deniedPeers: deniedPeers, observer: observer, logger: logger)
        let bootstrap = TokenSocketServer.makeBootstrap(group: group, admission: admission) { channel, peer in
            let sync = channel.pipeline.syncOperations
            try sync.configureHTTPServerPipeline(withErrorHandling: false)
            try sync.addHandler(ProtocolErrorResponder())
            try sync.addHandler(
                ProxyHTTPHandler(setup: setup, peer: peer, deadline: ConnectionDeadline(connections: open)))
        }
        let (channel, socketFile) = try await TokenSocketServer.bind(listener, bootstrap: bootstrap)
        return ProxySocketServer(
            serverChannel: channel, connections: open, socketFile: socketFile, upstream: upstream, logger: logger)
    }

    public func run() async throws {
        let serverChannel = self.serverChannel
        let connections = self.connections
        let logger = self.logger
        await withGracefulShutdownHandler {
            try? await serverChannel.closeFuture.get()
        } onGracefulShutdown: {
            logger.info("Stopping proxy socket: no new connections, finishing in-flight requests")
            _ = connections.stop(listening: serverChannel)
        }
        socketFile?.remove()
        await upstream.shutdown()
    }

    /// Stops accepting and finishes in-flight requests, outside of a service group (tests).
    public func shutdown() async {
        try? await connections.stop(listening: serverChannel).get()
        socketFile?.remove()
        await upstream.shutdown()
    }
}
