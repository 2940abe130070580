import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TokenEndpointEmulator
import WebhookTokenCore
import WebhookTokenEndpoint
import WebhookTokenServer
import WebhookTokenSystemd

#if canImport(Glibc)
import Glibc
#endif

/// The daemon, start to finish, in the linear shape of systemd's own daemons:
/// load configuration → start serving → first token → READY → renew and serve → stop → clean up.
public enum Daemon {
    /// Runs the daemon; returns the process exit status.
    public static func run(_ options: DaemonOptions) async -> Int32 {
        // SIGTERM, SIGINT and SIGHUP are blocked and waited for by ProcessSignals (from the very
        // start of main, so an early SIGHUP cannot kill the process).
        signal(SIGPIPE, SIG_IGN)

        // 1. Configuration.
        var developmentSetup: DevelopmentMode.Setup?
        let loaded: LoadedConfiguration
        if options.developmentMode {
            do {
                let setup = try await DevelopmentMode.start(options: options)
                developmentSetup = setup
                loaded = setup.loaded
            } catch {
                printError("webhook-tokend: Failed to start dev mode: \(error)")
                return DaemonExitCode.failure
            }
        } else {
            do {
                var configuration = try ConfigurationLoader.load(
                    path: options.configurationPath, environment: Environment.current, checkOnly: options.checkConfiguration)
                if let socketPath = options.socketPath { configuration.configuration.socket.path = socketPath }
                if let level = options.logLevel { configuration.configuration.logging.level = level }
                loaded = configuration
            } catch {
                printError("webhook-tokend: Failed to load configuration:\n\(error)")
                return DaemonExitCode.configuration
            }
        }
        if options.checkConfiguration {
            print(loaded.configuration.renderedTOML(), terminator: "")
            print("# configuration OK; client secret from \(loaded.secretOrigin)")
            return DaemonExitCode.success
        }
        let configuration = loaded.configuration

        // 2. Logging and process hardening.
        LoggingSetup.bootstrap(level: configuration.logging.level)
        var logger = Logger(label: "webhook-tokend")
        logger.logLevel = Logger.Level(rawValue: configuration.logging.level) ?? .info
        ProcessHardening.apply(logger: logger)
        if !DaemonProcess.ownsGlobalExecutor.load(ordering: .relaxed) {
            logger.warning("Swift tasks run on libdispatch, not the event loop: the idle daemon wakes every second")
        }
        let notifier = SystemdNotifier()

        // 3. The token endpoint client and the broker.
        let endpointClient: TokenEndpointClient
        do {
            endpointClient = try TokenEndpointClient(caFile: configuration.endpoint.caFile, timeout: configuration.endpoint.timeout)
        } catch {
            logger.critical("Failed to load ca_file \(configuration.endpoint.caFile ?? ""): \(error)")
            return DaemonExitCode.configuration
        }
        let fetcher = ReloadableEndpointClient(endpointClient)
        let metrics = DaemonMetrics()
        let broker = TokenBroker(
            endpoint: configuration.endpoint, request: loaded.tokenRequest, policy: configuration.renewal,
            logger: logger, exitOnInitialPermanentFailure: !options.developmentMode,
            onEvent: { event in
                switch event {
                case .tokenObtained(let status, let first):
                    ResidentCode.releaseSoon()
                    metrics.fetchSucceeded(renewal: !first)
                    if first {
                        notifier.ready(status: status.summary())
                    } else {
                        notifier.status(status.summary())
                    }
                case .fetchFailed(let failure, let status):
                    metrics.fetchFailed(failure)
                    notifier.status(status.summary())
                case .tokenExpired(let status):
                    notifier.status(status.summary())
                }
            })
        notifier.status("waiting for first token: request in flight")

        // 4. The socket: adopted from systemd, or bound here; guarded by the access rule and limits.
        let accessRule: PeerAccessRule
        do {
            accessRule = try AccessRuleResolver.resolve(configuration.access)
        } catch {
            logger.critical("Failed to load configuration: \(error)")
            return DaemonExitCode.configuration
        }
        let limits = TokenSocketServer.Limits(
            maximumConnections: configuration.socket.maximumConnections, headerTimeout: configuration.socket.headerTimeout,
            idleTimeout: configuration.socket.idleTimeout)
        let listener: TokenSocketServer.Listener
        do {
            if let fd = try SocketActivation.listeningSocket() {
                logger.info("Using the socket passed by systemd", metadata: ["fd": "\(fd)"])
                listener = .descriptor(fd)
            } else {
                listener = .path(configuration.socket.path, mode: configuration.socket.mode, group: configuration.socket.group)
            }
        } catch {
            logger.critical("Failed to adopt the socket passed by systemd: \(error)")
            return DaemonExitCode.failure
        }
        let server: TokenSocketServer
        do {
            let connections = ConnectionCounter()
            server = try await TokenSocketServer.start(
                listener: listener, serving: SocketAPI(broker: broker, metrics: metrics, connections: connections),
                limits: limits, access: accessRule, connections: connections, observer: metrics, logger: logger)
        } catch {
            logger.critical("Failed to listen on \(configuration.socket.path): \(error)")
            return DaemonExitCode.failure
        }
        if case .path(let path, _, _) = listener {
            logger.info("Listening", metadata: ["socket": "\(path)", "mode": "\(String(configuration.socket.mode, radix: 8))"])
        }
        if options.developmentMode {
            announceDevelopmentMode(socketPath: configuration.socket.path, tokenURL: configuration.endpoint.tokenURL)
        }

        // 5. Services: renewal, serving, reload on SIGHUP, watchdog; SIGTERM/SIGINT stop them gracefully.
        let hangups = ProcessSignals.shared.hangups()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: RenewalService(broker: broker, fetcher: fetcher, notifier: notifier),
                  successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup,
                  serviceName: "renewal"),
            .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup,
                  failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "socket-server"),
        ]
        if !options.developmentMode {
            services.append(.init(
                service: ReloadService(signals: hangups, configurationPath: options.configurationPath, broker: broker,
                                       fetcher: fetcher, notifier: notifier, logger: logger, current: loaded),
                successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "reload"))
        }
        if let interval = notifier.watchdogInterval() {
            logger.info("systemd watchdog enabled", metadata: ["interval_s": "\(interval.seconds)"])
            services.append(.init(
                service: WatchdogService(interval: interval, notifier: notifier, broker: broker,
                                         eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger),
                successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "watchdog"))
        }
        var groupLogger = logger
        groupLogger.logLevel = .warning
        // No gracefulShutdownSignals: ServiceLifecycle would trap them with libdispatch (see ProcessSignals).
        let group = ServiceGroup(configuration: .init(services: services, logger: groupLogger))
        for signal in [SIGTERM, SIGINT] {
            ProcessSignals.shared.setHandler(for: signal) {
                Task { await group.triggerGracefulShutdown() }
            }
        }

        var exitCode = DaemonExitCode.success
        do {
            try await group.run()
        } catch let error as TokenBroker.InitialFetchRejected {
            logger.critical("\(error)", metadata: ["message_id": "\(MessageID.renewalFailed)", "error_code": "\(error.failure.kind.rawValue)"])
            notifier.status(error.description)
            exitCode = DaemonExitCode.configuration
        } catch {
            logger.critical("Stopped after an error: \(error)")
            exitCode = DaemonExitCode.failure
        }

        // 6. Clean up.
        notifier.stopping()
        await server.shutdown()
        if let developmentSetup {
            await developmentSetup.emulator.shutdown()
            if let directory = developmentSetup.socketDirectory { rmdir(directory) }
        }
        logger.info("Stopped")
        return exitCode
    }

    private static func announceDevelopmentMode(socketPath: String, tokenURL: TokenURL) {
        printError("""
            webhook-tokend dev mode: tokens come from an emulated endpoint at \(tokenURL)
            The socket is \(socketPath). Try, from another terminal:
                webhook-token --socket \(socketPath)
                webhook-token --socket \(socketPath) status
                curl --unix-socket \(socketPath) http://localhost/v1/token
            Stop with Ctrl-C.
            """)
    }

    static func printError(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
