public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import ServiceLifecycle
import WebhookTokenCore

/// Serves the token over HTTP/1.1 on a Unix stream socket, as a ServiceLifecycle service.
///
/// On graceful shutdown (SIGTERM/SIGINT through the `ServiceGroup`) it stops accepting, lets
/// in-flight requests finish — idle keep-alive connections are closed at once, busy ones after
/// their current response — and removes the socket file it created (never one it was handed by
/// systemd socket activation).
public final class TokenSocketServer: Service {
    private let serverChannel: any Channel
    private let connections: OpenConnections
    private let socketFile: SocketFile?
    private let serving: any TokenServing
    private let logger: Logger

    /// Where the listening socket comes from.
    public enum Listener: Sendable {
        /// Bind a new socket at this path, with this mode and group id.
        case path(String, mode: UInt32, groupID: UInt32?)
        /// Adopt an already-listening descriptor (systemd socket activation).
        case descriptor(CInt)
    }

    private init(
        serverChannel: any Channel, connections: OpenConnections, socketFile: SocketFile?, serving: any TokenServing,
        logger: Logger
    ) {
        self.serverChannel = serverChannel
        self.connections = connections
        self.socketFile = socketFile
        self.serving = serving
        self.logger = logger
    }

    /// Limits on what one peer, or all of them together, can make the server hold.
    public struct Limits: Sendable {
        /// Connections beyond this are answered `503` and closed; the others are unaffected.
        public var maximumConnections: Int
        /// One user's connections beyond this are answered `503` and closed, so that the rest of
        /// `maximumConnections` stays available to other users.
        public var maximumConnectionsPerUser: Int
        public var headerTimeout: Duration
        public var idleTimeout: Duration
        public var maximumHeadBytes: Int

        public init(
            maximumConnections: Int = 4096, maximumConnectionsPerUser: Int = 1024,
            headerTimeout: Duration = .seconds(10),
            idleTimeout: Duration = .seconds(60), maximumHeadBytes: Int = 8192
        ) {
            self.maximumConnections = maximumConnections
            self.maximumConnectionsPerUser = maximumConnectionsPerUser
            self.headerTimeout = headerTimeout
            self.idleTimeout = idleTimeout
            self.maximumHeadBytes = maximumHeadBytes
        }

        /// What NIO's request decoder accepts of a head: `maximumHeadBytes` of request target,
        /// header names and values together.
        var decoderLimits: NIOHTTPDecoderLimitConfiguration {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = maximumHeadBytes
            limits.maxHeaderListSize = maximumHeadBytes
            return limits
        }

        static func timeAmount(_ duration: Duration) -> TimeAmount {
            .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        }
    }

    /// Binds (or adopts) the listening socket and starts accepting.
    public static func start(
        listener: Listener, serving: any TokenServing, limits: Limits = Limits(),
        access: SharedAccessRules = .everyone(), deniedPeers: DeniedPeerLog = DeniedPeerLog(),
        connections: ConnectionCounter = ConnectionCounter(), observer: any ServerObserver = NoServerObserver(),
        logger: Logger, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> TokenSocketServer {
        let admission = ConnectionAdmission(
            limits: limits, access: access, deniedPeers: deniedPeers, connections: connections, observer: observer,
            logger: logger)
        let open = OpenConnections(limits: limits)
        let bootstrap = makeBootstrap(group: group, admission: admission) { channel, peer in
            try addHandlers(
                to: channel.pipeline.syncOperations,
                TokenHTTPHandler(
                    serving: serving, peer: peer, access: access, deniedPeers: deniedPeers, observer: observer,
                    connections: open, logger: logger))
        }

        let (channel, socketFile) = try await bind(listener, bootstrap: bootstrap)
        return TokenSocketServer(
            serverChannel: channel, connections: open, socketFile: socketFile, serving: serving, logger: logger)
    }

    /// A token socket connection's pipeline: NIO's HTTP/1.1 server pipeline, its decoder bounding
    /// the head, and `handler`. Without NIO's outbound header validation: every header the
    /// handler writes is a constant, a number, a hex fingerprint or text `UntrustedText` made
    /// printable, and validating five of them cost a tenth of the work per request.
    static func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations, _ handler: TokenHTTPHandler) throws {
        try pipeline.configureHTTPServerPipeline(
            withErrorHandling: false, withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: handler.deadline.limits.decoderLimits)
        try pipeline.addHandler(handler)
    }

    /// The bootstrap of both sockets (tokens and proxy): a deep backlog, and every connection
    /// admitted (``ConnectionAdmission``) before `serve` builds its pipeline. Each socket's
    /// ``OpenConnections`` quiesces its connections on shutdown.
    static func makeBootstrap(
        group: any EventLoopGroup, admission: ConnectionAdmission,
        serve: @escaping @Sendable (any Channel, PeerCredentials?) throws -> Void
    ) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                admission.admit(channel) { peer in try serve(channel, peer) }
            }
            .childChannelOption(.maxMessagesPerRead, value: 16)
    }

    /// Binds a new socket file (with its lock, mode and group) or adopts a passed descriptor: the
    /// same for the token socket and the proxy sockets.
    static func bind(_ listener: Listener, bootstrap: ServerBootstrap) async throws -> (any Channel, SocketFile?) {
        switch listener {
        case .path(let path, let mode, let groupID):
            try SocketFile.prepareDirectory(path: path)
            let lock = try SocketLock.acquire(socketPath: path)
            let channel: any Channel
            do {
                try SocketFile.prepare(path: path)
                channel = try await SocketFile.withPrivateUmask {
                    try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
                }
            } catch {
                lock.release()
                throw error
            }
            let socketFile: SocketFile
            do {
                socketFile = try SocketFile.finishBinding(path: path, mode: mode, groupID: groupID, lock: lock)
            } catch {
                try? await channel.close()
                if case .notOurSocket = error {} else { unlinkQuietly(path) }
                lock.release()
                throw error
            }
            return (channel, socketFile)
        case .descriptor(let fd):
            return (try await bootstrap.withBoundSocket(fd).get(), nil)
        }
    }

    public func run() async throws {
        let serverChannel = self.serverChannel
        let connections = self.connections
        let logger = self.logger
        let serving = self.serving
        await withGracefulShutdownHandler {
            try? await serverChannel.closeFuture.get()
        } onGracefulShutdown: {
            logger.info("Stopping socket server: no new connections, finishing in-flight requests")
            serving.shutdown()
            _ = connections.stop(listening: serverChannel)
        }
        socketFile?.remove()
    }

    /// Stops accepting and finishes in-flight requests, outside of a service group (tests).
    public func shutdown() async {
        serving.shutdown()
        try? await connections.stop(listening: serverChannel).get()
        socketFile?.remove()
    }
}

#if canImport(Glibc)
    import Glibc
    private func unlinkQuietly(_ path: String) { unlink(path) }
#endif
