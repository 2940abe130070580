import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// Talks to the service manager through libsystemd's `sd_notify`.
///
/// Outside systemd (no `NOTIFY_SOCKET`) every call is a harmless no-op — `sd_notify` itself
/// returns 0 then — so the daemon runs unchanged in a terminal or a container.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Whether a service manager listens (`NOTIFY_SOCKET` is set).
    public var isActive: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// Sends raw `KEY=value` lines. Returns whether the message was delivered.
    @discardableResult
    public func send(_ assignments: String) -> Bool {
        sd_notify(0, assignments) > 0
    }

    /// `READY=1` with a status line: units ordered after this one may now ask for the token.
    public func ready(status: String) {
        send("READY=1\nSTATUS=\(Self.sanitized(status))")
    }

    /// `STATUS=…`: the one line `systemctl status` shows.
    public func status(_ status: String) {
        send("STATUS=\(Self.sanitized(status))")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (as systemd 253+ expects; harmless on 252).
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    public func stopping() {
        send("STOPPING=1")
    }

    public func watchdogPing() {
        send("WATCHDOG=1")
    }

    /// The watchdog interval if systemd's watchdog applies to this process (`WATCHDOG_USEC`, with
    /// `WATCHDOG_PID` naming us), else `nil`.
    public func watchdogInterval() -> Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
    }

    /// A status line must be one line: newlines would start new assignments.
    static func sanitized(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
