/// The process exit status, following sysexits(3) so that shell scripts can tell
/// "try again later" from "fix your setup".
enum ExitCode: Int32 {
    /// The requested output was written.
    case success = 0
    /// The command line was wrong (EX_USAGE).
    case usage = 64
    /// The daemon could not be reached or did not answer sensibly (EX_UNAVAILABLE).
    case unavailable = 69
    /// Standard output could not be written (EX_IOERR).
    case ioError = 74
    /// The daemon is up but has no valid token right now; retrying later may help (EX_TEMPFAIL).
    case temporaryFailure = 75
    /// The socket or the daemon refused this process (EX_NOPERM).
    case permissionDenied = 77
}
