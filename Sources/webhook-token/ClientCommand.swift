import WebhookTokenProtocol

/// What the user asked for, parsed from the command line and the environment.
struct ClientCommand: Equatable {
    enum Action: Equatable {
        /// Print the current token (the default).
        case token
        /// Print the daemon's status summary.
        case status
        /// Force a renewal, then print the new token.
        case refresh
        /// Print the token, then every new one as it is served, until interrupted.
        case watch
        case help
        case version
    }

    enum OutputForm: Equatable {
        /// The bare token, or the human-readable status text.
        case plain
        /// `Authorization: Bearer <token>` (token and refresh only).
        case header
        /// The daemon's JSON document.
        case json
    }

    static let version = SocketProtocol.version
    static let defaultSocketPath = SocketProtocol.defaultSocketPath
    static let socketEnvironmentVariable = SocketProtocol.socketEnvironmentVariable
    static let profileEnvironmentVariable = SocketProtocol.profileEnvironmentVariable
    static let maximumSocketPathBytes = SocketProtocol.maximumSocketPathBytes
    static let maximumTimeoutSeconds = 86_400.0

    var action: Action
    var output: OutputForm
    var socketPath: String
    var timeoutSeconds: Double
    /// The profile to ask for; `nil` for the daemon's default (or only) one.
    var profile: String? = nil
    /// `status --quiet`: print nothing, exit 0 only when the daemon has a token to serve (a probe).
    var quiet = false

    /// Parses the arguments (without the program name).
    ///
    /// `environmentSocketPath` is the value of `WEBHOOK_TOKEN_SOCKET`, if set.
    static func parse(
        _ arguments: [String],
        environmentSocketPath: String?, environmentProfile: String? = nil
    ) throws(ClientFailure) -> ClientCommand {
        var action: Action?
        var wantsHeader = false
        var wantsJSON = false
        var quiet = false
        var socketPath: String?
        var profile: String?
        var timeout: Double?

        var index = 0
        var optionsEnded = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1

            if optionsEnded || argument == "-" || !argument.hasPrefix("-") {
                guard action == nil else {
                    throw .usage("unexpected argument '\(argument)'")
                }
                switch argument {
                case "status": action = .status
                case "refresh": action = .refresh
                case "watch": action = .watch
                default: throw .usage("unknown command '\(argument)' (commands: status, refresh, watch)")
                }
                continue
            }
            if argument == "--" {
                optionsEnded = true
                continue
            }

            // Split `--name=value`; only options that take a value accept the attached form.
            var name = argument
            var attachedValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                attachedValue = String(argument[argument.index(after: equals)...])
            }

            switch name {
            case "-h", "--help", "--version", "--header", "--json", "-q", "--quiet":
                if attachedValue != nil {
                    throw .usage("option \(name) does not take a value")
                }
                switch name {
                case "--version": return ClientCommand.informational(.version)
                case "--header": wantsHeader = true
                case "--json": wantsJSON = true
                case "-q", "--quiet": quiet = true
                default: return ClientCommand.informational(.help)
                }
            case "--socket", "--timeout", "--profile":
                let value: String
                if let attachedValue {
                    value = attachedValue
                } else if index < arguments.count, !arguments[index].hasPrefix("-") {
                    value = arguments[index]
                    index += 1
                } else {
                    throw .usage("option \(name) needs a value (\(name)=VALUE if it starts with '-')")
                }
                if name == "--socket" {
                    socketPath = value
                } else if name == "--profile" {
                    profile = value
                } else {
                    timeout = try parseTimeout(value)
                }
            default:
                throw .usage("unknown option '\(name)'")
            }
        }

        let chosenAction = action ?? .token
        if wantsHeader && wantsJSON {
            throw .usage("--header and --json cannot be combined")
        }
        if wantsHeader && chosenAction == .status {
            throw .usage("--header only applies to printing a token, not to 'status'")
        }
        if quiet && (chosenAction != .status || wantsJSON) {
            throw .usage("--quiet only applies to 'status', without --json")
        }

        let path: String
        if let socketPath {
            guard !socketPath.isEmpty else { throw .usage("--socket needs a non-empty path") }
            path = socketPath
        } else if let environmentSocketPath, !environmentSocketPath.isEmpty {
            path = environmentSocketPath
        } else {
            path = defaultSocketPath
        }
        if path.utf8.count > maximumSocketPathBytes {
            let source = socketPath != nil ? "--socket" : socketEnvironmentVariable
            throw .usage(
                "the socket path from \(source) is \(path.utf8.count) bytes long; "
                    + "Unix socket paths must be shorter than 108 bytes")
        }

        let chosenProfile = profile ?? environmentProfile.flatMap { $0.isEmpty ? nil : $0 }
        if let chosenProfile, !isProfileName(chosenProfile) {
            let source = profile != nil ? "--profile" : profileEnvironmentVariable
            throw .usage(
                "the profile name from \(source) must be lower-case letters, digits and dashes, not '\(chosenProfile)'")
        }
        return ClientCommand(
            action: chosenAction,
            output: wantsHeader ? .header : (wantsJSON ? .json : .plain),
            socketPath: path,
            timeoutSeconds: timeout ?? (chosenAction == .refresh ? 35 : 5),
            profile: chosenProfile,
            quiet: quiet
        )
    }

    /// `[a-z0-9][a-z0-9-]{0,62}`, as the daemon's profile names (and safe in a URL path).
    private static func isProfileName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 63 else { return false }
        func allowed(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
        return allowed(first) && name.utf8.allSatisfy { allowed($0) || $0 == UInt8(ascii: "-") }
    }

    private static func informational(_ action: Action) -> ClientCommand {
        ClientCommand(action: action, output: .plain, socketPath: defaultSocketPath, timeoutSeconds: 0)
    }

    private static func parseTimeout(_ text: String) throws(ClientFailure) -> Double {
        let isPlainNumber = !text.isEmpty && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E }
        guard isPlainNumber, let seconds = Double(text), seconds > 0, seconds <= maximumTimeoutSeconds else {
            throw .usage("--timeout needs a number of seconds greater than 0 and at most 86400, not '\(text)'")
        }
        return seconds
    }

    static let usageText = """
        Usage: webhook-token [status | refresh | watch] [--header | --json] [--profile NAME] [--socket PATH] [--timeout SECONDS]
               webhook-token status --quiet [--profile NAME] [--socket PATH] [--timeout SECONDS]

        Prints the OAuth bearer token that webhook-tokend holds, for example:
          curl -H "$(webhook-token --header)" https://api.example.com/...

        Commands:
          (none)             print the current token and a newline
          status             print the daemon's status (every profile)
          refresh            make the daemon renew the token now, then print the new one
          watch              print the token, then each new one as it is served, one per line,
                             until interrupted (reconnects if the daemon restarts)

        Options:
          --header           print "Authorization: Bearer <token>" instead of the bare token
          --json             print the daemon's JSON answer (token, expiry, scope / full status)
          --profile NAME     the profile whose token to print (or refresh); default
                             $WEBHOOK_TOKEN_PROFILE, else the daemon's default profile
          -q, --quiet        with status: print nothing; exit 0 only if a token can be served now
          --socket PATH      the daemon's socket; default $WEBHOOK_TOKEN_SOCKET,
                             else /run/webhook-tokend/token.sock
          --timeout SECONDS  give up after this long (default 5; 35 for refresh)
          -h, --help         show this help
          --version          show the version

        Exit status:
          0   success
          64  usage error
          69  the daemon is unreachable or answered unexpectedly
          74  the output could not be written
          75  the daemon has no valid token right now; try again later
          77  permission denied (socket permissions or the daemon's peer policy)

        """
}
