import ArgumentParser
import WebhookTokenCore
import WebhookTokenDaemon
import WebhookTokenServer

/// `webhook-tokend`: fetches the webhooks bearer token, keeps it in memory, renews it before it
/// expires, and serves it on a Unix socket. All the work is in `WebhookTokenDaemon`.
///
/// A synchronous command: `DaemonProcess.start()` must run before the first Swift task exists (it
/// makes the NIO event loop the global executor), which an async `main` would already be.
@main
struct WebhookTokend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook-tokend",
        abstract: "Fetch, hold, renew and serve an OAuth 2.0 client-credentials token over a Unix socket.",
        version: DaemonVersion.string)

    @Option(name: .long, help: ArgumentHelp("The configuration file.", valueName: "path"))
    var config: String = Configuration.defaultPath

    @Flag(
        name: .customLong("check-config"), help: "Validate the configuration, print it with secrets redacted, and exit."
    )
    var checkConfig = false

    @Flag(name: .long, help: "Self-contained demo: an emulated token endpoint and a socket in a temporary directory.")
    var dev = false

    @Option(name: .long, help: ArgumentHelp("Serve on this socket instead of [socket] path.", valueName: "path"))
    var socket: String?

    @Option(
        name: .customLong("dev-token-lifetime"),
        help: ArgumentHelp("Lifetime of dev-mode tokens, in seconds.", valueName: "seconds"))
    var devTokenLifetime: Int = 30

    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: String?

    @Option(
        name: .customLong("dev-profiles"),
        help: ArgumentHelp("With --dev: emulate these profiles (comma-separated names).", valueName: "names"))
    var devProfiles: String?

    @Option(
        name: .customLong("print-reference"),
        help: ArgumentHelp(
            "Print the reference of the configuration keys or the socket routes, as Markdown.", visibility: .hidden))
    var printReference: Reference?

    enum Reference: String, ExpressibleByArgument {
        case configuration, routes
    }

    private var devProfileNames: [String]? {
        devProfiles.map { $0.split(separator: ",").map(String.init) }
    }

    func validate() throws {
        if let logLevel, !Configuration.Logging.levels.contains(logLevel) {
            throw ValidationError("--log-level must be one of \(Configuration.Logging.levels.joined(separator: ", "))")
        }
        if devTokenLifetime < 1 { throw ValidationError("--dev-token-lifetime must be at least 1") }
        if let names = devProfileNames {
            guard dev else { throw ValidationError("--dev-profiles needs --dev") }
            guard !names.isEmpty, names.allSatisfy(Configuration.Profile.isValidName), Set(names).count == names.count
            else {
                throw ValidationError("--dev-profiles needs distinct names of lower-case letters, digits and dashes")
            }
        }
    }

    static func main() {
        DaemonProcess.start()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    func run() throws {
        switch printReference {
        case .configuration?: return print(ConfigurationKey.referenceMarkdown(), terminator: "")
        case .routes?: return print(SocketRoute.referenceMarkdown(), terminator: "")
        case nil: break
        }
        let status = DaemonProcess.run(
            DaemonOptions(
                configurationPath: config, checkConfiguration: checkConfig, developmentMode: dev, socketPath: socket,
                developmentTokenLifetime: devTokenLifetime, logLevel: logLevel,
                developmentProfiles: devProfileNames ?? [Configuration.Profile.defaultName]))
        if status != 0 { throw ExitCode(status) }
    }
}
