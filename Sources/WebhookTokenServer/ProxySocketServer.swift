public import Logging
public import NIOCore
import NIOExtras
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
    private let quiesce: ServerQuiescingHelper
    private let socketFile: SocketFile?
    private let upstream: ProxyUpstream
    private let logger: Logger

    private init(
        serverChannel: any Channel, quiesce: ServerQuiescingHelper, socketFile: SocketFile?, upstream: ProxyUpstream,
        logger: Logger
    ) {
        self.serverChannel = serverChannel
        self.quiesce = quiesce
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
        let quiesce = ServerQuiescingHelper(group: group)
        let admission = ConnectionAdmission(
            limits: limits, access: access, profile: profile, deniedPeers: deniedPeers, connections: connections,
            observer: serverObserver, logger: logger)
        let setup = Setup(
            profile: profile, proxy: proxy, upstream: upstream, serving: serving, access: access,
            deniedPeers: deniedPeers, observer: observer, logger: logger)
        let idle = TokenSocketServer.Limits.timeAmount(limits.idleTimeout)
        let bootstrap = TokenSocketServer.makeBootstrap(group: group, quiesce: quiesce, admission: admission) {
            channel, peer in
            let sync = channel.pipeline.syncOperations
            // A connection idle both ways is closed.
            try sync.addHandler(IdleStateHandler(allTimeout: idle))
            try sync.configureHTTPServerPipeline(withErrorHandling: false)
            try sync.addHandler(ProtocolErrorResponder())
            try sync.addHandler(ProxyHTTPHandler(setup: setup, peer: peer))
        }
        let (channel, socketFile) = try await TokenSocketServer.bind(listener, bootstrap: bootstrap)
        return ProxySocketServer(
            serverChannel: channel, quiesce: quiesce, socketFile: socketFile, upstream: upstream, logger: logger)
    }

    public func run() async throws {
        let closed = serverChannel.closeFuture
        let quiesce = self.quiesce
        let logger = self.logger
        await withGracefulShutdownHandler {
            try? await closed.get()
        } onGracefulShutdown: {
            logger.info("Stopping proxy socket: no new connections, finishing in-flight requests")
            let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
            quiesce.initiateShutdown(promise: promise)
        }
        socketFile?.remove()
        await upstream.shutdown()
    }

    /// Stops accepting and finishes in-flight requests, outside of a service group (tests).
    public func shutdown() async {
        let promise = serverChannel.eventLoop.makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: promise)
        try? await promise.futureResult.get()
        socketFile?.remove()
        await upstream.shutdown()
    }
}
