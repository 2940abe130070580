import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TokenEndpointEmulator
import WebhookTokenCore
import WebhookTokenEndpoint
import WebhookTokenProtocol
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
                    path: options.configurationPath, environment: Environment.current,
                    checkOnly: options.checkConfiguration)
                options.applyOverrides(to: &configuration.configuration)
                loaded = configuration
            } catch {
                printError("webhook-tokend: Failed to load configuration:\n\(error)")
                return DaemonExitCode.configuration
            }
        }
        if options.checkConfiguration {
            do {
                _ = try AccessRuleResolver.resolve(loaded.configuration)
            } catch {
                printError("webhook-tokend: Failed to load configuration:\n\(loaded.path): \(error)")
                return error.isTransient ? DaemonExitCode.temporaryFailure : DaemonExitCode.configuration
            }
            print(loaded.configuration.renderedTOML(), terminator: "")
            for profile in loaded.configuration.profiles {
                let origin = loaded.secrets[profile.name]?.origin ?? "?"
                let whose = loaded.configuration.profiles.count == 1 ? "" : " of the profile \(profile.name)"
                print("# configuration OK; client secret\(whose) from \(origin)")
            }
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

        // 3. The names the configuration uses, then one broker per profile.
        let names: AccessRuleResolver.Resolved
        do {
            names = try await AccessRuleResolver.resolveRetrying(configuration, logger: logger)
        } catch {
            logger.critical("Failed to load configuration: \(error)")
            return error.isTransient ? DaemonExitCode.temporaryFailure : DaemonExitCode.configuration
        }
        let metrics = DaemonMetrics()
        let profiles = ProfileSet()
        let readiness = ReadinessTracker(
            notifier: notifier, summary: { profiles.status().summary() },
            giveUp: { [logger] rejected in
                logger.critical(
                    "\(rejected)",
                    metadata: [
                        "message_id": "\(MessageID.renewalFailed)", "error_code": "\(rejected.errorCode)",
                    ])
                profiles.fail(rejected)
            })
        let deliveries = TokenDeliveries(logger: logger, metrics: metrics)
        deliveries.configure(configuration, sinkGroupIDs: names.sinkGroupIDs, servable: { _ in nil })
        let factory = ProfileFactory(logger: logger, metrics: metrics, readiness: readiness, deliveries: deliveries)
        do {
            for profile in configuration.profiles {
                profiles.add(try factory.make(profile, request: loaded.tokenRequest(for: profile)))
            }
        } catch {
            logger.critical("Failed to load configuration: \(error)")
            return DaemonExitCode.configuration
        }
        notifier.status(profiles.status().summary())

        // 4. The socket: adopted from systemd, or bound here; guarded by the access rules and limits.
        let accessRules = SharedAccessRules(names.rules)
        let limits = TokenSocketServer.Limits(
            maximumConnections: configuration.socket.maximumConnections,
            maximumConnectionsPerUser: configuration.socket.maximumConnectionsPerUser,
            headerTimeout: configuration.socket.headerTimeout, idleTimeout: configuration.socket.idleTimeout)
        let listener: TokenSocketServer.Listener
        let passed: [CInt]
        do {
            passed = try SocketActivation.listeningSockets()
            // One passed socket is the token socket; with more ([proxy] sockets), the one bound to its path.
            let fd =
                passed.count == 1
                ? passed.first : SocketActivation.descriptor(boundTo: configuration.socket.path, among: passed)
            if let fd {
                logger.info("Using the socket passed by systemd", metadata: ["fd": "\(fd)"])
                listener = .descriptor(fd)
            } else if passed.isEmpty {
                listener = .path(
                    configuration.socket.path, mode: configuration.socket.mode, groupID: names.socketGroupID)
            } else {
                throw SocketActivation.Problem.tooManyDescriptors(passed.count)
            }
        } catch {
            logger.critical("Failed to adopt the socket passed by systemd: \(error)")
            return DaemonExitCode.failure
        }
        let server: TokenSocketServer
        let connections = ConnectionCounter()
        let socketAPI = SocketAPI(profiles: profiles, metrics: metrics, connections: connections)
        do {
            server = try await TokenSocketServer.start(
                listener: listener, serving: socketAPI,
                limits: limits, access: accessRules, connections: connections, observer: metrics, logger: logger)
        } catch {
            logger.critical("Failed to listen on \(configuration.socket.path): \(error)")
            return DaemonExitCode.failure
        }
        let proxies: [ProxySocketServer]
        do {
            proxies = try await ProxyStartup.start(
                configuration, passed: passed, groupID: names.socketGroupID, serving: socketAPI, limits: limits,
                access: accessRules, connections: connections, metrics: metrics, logger: logger)
        } catch {
            logger.critical("Failed to listen: \(error)")
            await server.shutdown()
            return DaemonExitCode.failure
        }
        if case .path(let path, _, _) = listener {
            logger.info(
                "Listening", metadata: ["socket": "\(path)", "mode": "\(String(configuration.socket.mode, radix: 8))"])
        }
        if options.developmentMode {
            announceDevelopmentMode(socketPath: configuration.socket.path, profiles: configuration.profiles)
        }

        // 5. Services: serving, reload on SIGHUP, watchdog, renewal. SIGTERM/SIGINT stop them
        // gracefully in reverse order: renewal first (STOPPING=1; every waiting consumer is
        // answered), the socket server last (in-flight requests finish, the socket is removed).
        let hangups = ProcessSignals.shared.hangups()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] =
            [
                .init(
                    service: server, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "socket-server")
            ]
            + proxies.map {
                .init(
                    service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "proxy")
            }
        if !options.developmentMode {
            services.append(
                .init(
                    service: ReloadService(
                        signals: hangups, configurationPath: options.configurationPath,
                        options: options, profiles: profiles, factory: factory, readiness: readiness,
                        deliveries: deliveries,
                        access: accessRules, notifier: notifier, logger: logger,
                        current: loaded, currentNames: names),
                    successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup,
                    serviceName: "reload"))
        }
        if let interval = notifier.watchdogInterval() {
            logger.info("systemd watchdog enabled", metadata: ["interval_s": "\(interval.seconds)"])
            services.append(
                .init(
                    service: WatchdogService(
                        interval: interval, notifier: notifier, profiles: profiles, connections: connections,
                        eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger),
                    successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup,
                    serviceName: "watchdog"))
        }
        services.append(
            .init(
                service: RenewalService(profiles: profiles, notifier: notifier),
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "renewal"))
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
        } catch is AllProfilesRejected {
            exitCode = DaemonExitCode.configuration
        } catch {
            logger.critical("Stopped after an error: \(error)")
            exitCode = DaemonExitCode.failure
        }

        // 6. Clean up (the services have stopped, and the socket server removed its socket):
        // no token is left in a sink file.
        deliveries.stop()
        if let developmentSetup {
            await developmentSetup.emulator.shutdown()
            if let directory = developmentSetup.socketDirectory { rmdir(directory) }
        }
        logger.info("Stopped")
        return exitCode
    }

    private static func announceDevelopmentMode(socketPath: String, profiles: [Configuration.Profile]) {
        let tokenURL = profiles[0].endpoint.tokenURL
        let names = profiles.count == 1 ? "" : " (profiles: \(profiles.map(\.name).joined(separator: ", ")))"
        // With several profiles and no "default", the unnamed routes ask for a name.
        let named = profiles.count > 1 && !profiles.contains { $0.name == Configuration.Profile.defaultName }
        let option = named ? " --profile \(profiles[0].name)" : ""
        let path = named ? SocketProtocol.tokenPath(profile: profiles[0].name) : SocketProtocol.tokenPath
        printError(
            """
            webhook-tokend dev mode: tokens come from an emulated endpoint at \(tokenURL)\(names)
            The socket is \(socketPath). Try, from another terminal:
                webhook-token --socket \(socketPath)\(option)
                webhook-token --socket \(socketPath) status
                curl --unix-socket \(socketPath) http://localhost\(path)
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
