import Glibc

/// Writes the command's result to standard output in one write(2) loop.
enum StandardOutputWriter {
    static func write(_ bytes: [UInt8]) -> ExitCode {
        guard let error = StandardStream.writeAll(bytes, to: STDOUT_FILENO) else { return .success }
        // The reader went away (`webhook-token | head -c1`): nobody is left to tell.
        if error == EPIPE { return .success }
        StandardStream.reportError("cannot write to standard output: \(String(cString: strerror(error)))")
        return .ioError
    }
}
