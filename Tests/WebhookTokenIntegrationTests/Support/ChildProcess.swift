import Foundation

/// A child process started with `posix_spawn` and reaped with `waitpid`.
///
/// The tests start hundreds of processes from many threads at once; Foundation's `Process` on
/// Linux occasionally never returns from `waitUntilExit()` under that load (seen here: a test run
/// hung in `Shell.run` for half an hour). This is the plain POSIX way, with nothing in between.
final class ChildProcess: @unchecked Sendable {
    enum TerminationReason { case exit, uncaughtSignal }

    let processIdentifier: pid_t
    private let lock = NSLock()
    private var rawStatus: Int32?

    /// Starts `executable`; its stdin is /dev/null, stdout and stderr go to the given descriptors
    /// (which the caller keeps and closes).
    init(_ executable: String, _ arguments: [String], environment: [String: String], stdout: Int32, stderr: Int32)
        throws
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        // The child gets stdin, stdout and stderr only. Descriptors without close-on-exec (NIO's
        // listening sockets among them) would otherwise leak into it and keep, say, a stopped
        // emulator's port open while the daemon under test lives.
        guard Self.addCloseFrom(&actions, 3) == 0 else {
            throw TestFailure("posix_spawn_file_actions_addclosefrom_np failed")
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard result == 0 else {
            throw TestFailure("posix_spawn \(executable) failed: \(String(cString: strerror(result)))")
        }
        processIdentifier = pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module
    /// does not import (it is behind `_GNU_SOURCE`).
    private static let addCloseFrom: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32 =
        {
            guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else {
                fatalError("glibc without posix_spawn_file_actions_addclosefrom_np")
            }
            return unsafeBitCast(
                symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
        }()

    deinit {
        // Never leave a zombie (or a running daemon) behind.
        if isRunning {
            kill(processIdentifier, SIGKILL)
            _ = waitForExitBlocking()  // killed: a moment
        }
    }

    /// Reaps the child if it has exited; never blocks.
    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if rawStatus != nil { return false }
        var status: Int32 = 0
        if waitpid(processIdentifier, &status, WNOHANG) == processIdentifier {
            rawStatus = status
            return false
        }
        return true
    }

    /// Waits, on a thread of its own, until the child exits; its status as a shell reports it
    /// (128 + signal if killed).
    @discardableResult
    func waitForExit() async -> Int32 {
        await onOwnThread { self.waitForExitBlocking() }
    }

    /// ``waitForExit()`` blocking the calling thread: for a thread of the caller's own, or a
    /// `deinit` after SIGKILL.
    @discardableResult
    func waitForExitBlocking() -> Int32 {
        // Wait for the exit without reaping it (WNOWAIT) and without the lock, so that
        // `isRunning` never blocks meanwhile; then reap it under the lock, at once.
        var info = siginfo_t()
        while waitid(P_PID, id_t(processIdentifier), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        lock.lock()
        defer { lock.unlock() }
        if rawStatus == nil {
            var status: Int32 = 0
            while waitpid(processIdentifier, &status, 0) < 0 && errno == EINTR {}
            rawStatus = status
        }
        return Self.decode(rawStatus!).status
    }

    var terminationStatus: Int32 {
        lock.lock()
        defer { lock.unlock() }
        return rawStatus.map { Self.decode($0).status } ?? -1
    }

    var terminationReason: TerminationReason {
        lock.lock()
        defer { lock.unlock() }
        return rawStatus.map { Self.decode($0).reason } ?? .exit
    }

    private static func decode(_ status: Int32) -> (status: Int32, reason: TerminationReason) {
        let signal = status & 0x7f
        if signal == 0 { return ((status >> 8) & 0xff, .exit) }
        return (128 + signal, .uncaughtSignal)
    }

    static var environmentWithoutSystemd: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for key in [
            "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
            "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY",
        ] {
            environment[key] = nil
        }
        return environment
    }
}

/// A pipe-like channel whose read end is drained into memory by its own thread until end of file.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    let writeEnd: Int32
    private let readEnd: Int32
    private let done = DispatchSemaphore(value: 0)

    init() throws {
        var fds: [Int32] = [0, 0]
        // A socket pair rather than pipe(2): it can be made close-on-exec atomically (Swift's Glibc
        // has no pipe2), so a process spawned by another thread meanwhile cannot inherit it and
        // hold our end-of-file hostage.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw TestFailure("socketpair failed")
        }
        readEnd = fds[0]
        writeEnd = fds[1]
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                lock.lock()
                data.append(contentsOf: chunk[..<count])
                lock.unlock()
            }
            close(readEnd)
            done.signal()
        }
        thread.start()
    }

    /// Closes our copy of the write end (after spawning: the child has its own).
    func closeWriteEnd() { close(writeEnd) }

    /// Waits, on a thread of its own, for end of file (every writer gone); then the text.
    func finish() async -> String {
        await onOwnThread { self.finishBlocking() }
    }

    /// ``finish()`` blocking the calling thread.
    func finishBlocking() -> String {
        done.wait()
        return text
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
