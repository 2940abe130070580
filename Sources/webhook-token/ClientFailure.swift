/// Why the client gives up: the exit status plus a one-line explanation for standard error.
///
/// `message` never contains the token; it is printed after the `webhook-token: ` prefix.
struct ClientFailure: Error {
    let exitCode: ExitCode
    let message: String
    /// Whether to point at `--help` after the message (usage errors only).
    let suggestsHelp: Bool

    init(_ exitCode: ExitCode, _ message: String, suggestsHelp: Bool = false) {
        self.exitCode = exitCode
        self.message = message
        self.suggestsHelp = suggestsHelp
    }

    static func usage(_ message: String) -> ClientFailure {
        ClientFailure(.usage, message, suggestsHelp: true)
    }
}
