import Glibc

// `webhook-token | head -c1` must not kill us with SIGPIPE; a failed write is handled instead.
_ = signal(SIGPIPE, SIG_IGN)

let environmentSocketPath = getenv(ClientCommand.socketEnvironmentVariable).map { String(cString: $0) }
let environmentProfile = getenv(ClientCommand.profileEnvironmentVariable).map { String(cString: $0) }
let exitCode: ExitCode
var quiet = false
do {
    let command = try ClientCommand.parse(
        Array(CommandLine.arguments.dropFirst()), environmentSocketPath: environmentSocketPath,
        environmentProfile: environmentProfile)
    quiet = command.quiet
    let output = try ClientRunner(command: command).run()
    exitCode = StandardOutputWriter.write(output)
} catch  where quiet {
    exitCode = error.exitCode
} catch {
    StandardStream.reportError(error.message)
    if error.suggestsHelp {
        _ = StandardStream.writeAll(Array("Try 'webhook-token --help' for usage.\n".utf8), to: STDERR_FILENO)
    }
    exitCode = error.exitCode
}
exit(exitCode.rawValue)
