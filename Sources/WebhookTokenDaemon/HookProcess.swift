#if canImport(Glibc)
    import Glibc
#endif

/// Runs one hook command to completion: spawned with `posix_spawn` (no shell) in a process group
/// of its own, with a clean environment and signal state, its output captured (a bounded
/// excerpt kept), killed — the whole group — when it outlives its timeout. Blocking: call it on
/// a thread pool.
enum HookProcess {
    struct Outcome: Sendable, CustomStringConvertible {
        enum Ending: Sendable, Equatable {
            case exited(Int32)
            case signalled(Int32)
            case timedOut
            case couldNotStart(Int32)
        }

        var ending: Ending
        /// The first bytes of its standard output and error, as text.
        var output: String
        var duration: Duration

        var succeeded: Bool { ending == .exited(0) }

        var description: String {
            switch ending {
            case .exited(let status): return "exited with status \(status)"
            case .signalled(let signal): return "killed by signal \(signal)"
            case .timedOut: return "timed out and was killed"
            case .couldNotStart(let code): return "could not be started: \(String(cString: strerror(code)))"
            }
        }

        /// The metric label of the outcome.
        var result: String {
            switch ending {
            case .exited(0): return "success"
            case .exited: return "failure"
            case .signalled: return "signalled"
            case .timedOut: return "timeout"
            case .couldNotStart: return "not_started"
            }
        }
    }

    /// How much of a hook's output is kept for the log.
    static let outputExcerptBytes = 2048

    /// - Parameters:
    ///   - input: written to its standard input, then closed (`nil`: `/dev/null`).
    ///   - started: called with the process group id once it runs, so that it can be killed.
    static func run(
        command: [String], environment: [String], input: [UInt8]?, timeout: Duration,
        started: (pid_t) -> Void = { _ in }
    ) -> Outcome {
        let begin = ContinuousClock.now
        var output = [Int32](repeating: -1, count: 2)
        var stdinPipe = [Int32](repeating: -1, count: 2)
        guard makePipe(&output) else { return Outcome(ending: .couldNotStart(errno), output: "", duration: .zero) }
        defer { for fd in output where fd >= 0 { close(fd) } }
        if input != nil {
            guard makePipe(&stdinPipe) else {
                return Outcome(ending: .couldNotStart(errno), output: "", duration: .zero)
            }
        }
        defer { for fd in stdinPipe where fd >= 0 { close(fd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, output[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (to kill it whole), no blocked signals, default dispositions:
        // the daemon blocks and ignores signals that a child must not inherit.
        var empty = sigset_t()
        var all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid: pid_t = 0
        let code = withCStrings(command) { argv in
            withCStrings(environment) { envp in
                posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
            }
        }
        guard code == 0 else { return Outcome(ending: .couldNotStart(code), output: "", duration: .zero) }
        started(pid)
        close(output[1])
        output[1] = -1
        if let input {
            close(stdinPipe[0])
            stdinPipe[0] = -1
            var offset = 0
            while offset < input.count {
                let count = input[offset...].withUnsafeBytes { write(stdinPipe[1], $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }  // it closed its standard input: its business
                offset += count
            }
            close(stdinPipe[1])
            stdinPipe[1] = -1
        }

        // Read its output until it ends (or its descendants close the pipe) or the deadline.
        let deadline = begin + timeout
        var excerpt: [UInt8] = []
        var status: Int32 = 0
        var reaped = false
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if !reaped, waitpid(pid, &status, WNOHANG) == pid { reaped = true }
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero {
                if !reaped {
                    timedOut = true
                    kill(-pid, SIGKILL)
                }
                break
            }
            var descriptor = pollfd(fd: output[0], events: Int16(POLLIN), revents: 0)
            let milliseconds =
                reaped
                ? 0
                : Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000, 100))
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 {
                let count = buffer.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
                if count > 0 {
                    if excerpt.count < outputExcerptBytes {
                        excerpt += buffer[..<min(count, outputExcerptBytes - excerpt.count)]
                    }
                    continue
                }
                if count == 0 || (count < 0 && errno != EINTR) {
                    if reaped { break }
                    // Its output is closed; wait for it to exit (polling, until the deadline).
                    usleep(10_000)
                }
            } else if reaped {
                break  // exited and nothing more to read now: descendants may hold the pipe
            }
        }
        if !reaped {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        let duration = begin.duration(to: .now)
        let text = String(decoding: excerpt, as: UTF8.self)
        if timedOut { return Outcome(ending: .timedOut, output: text, duration: duration) }
        if status & 0x7F == 0 {
            return Outcome(ending: .exited((status >> 8) & 0xFF), output: text, duration: duration)
        }
        return Outcome(ending: .signalled(status & 0x7F), output: text, duration: duration)
    }

    /// `pipe` with both ends close-on-exec (`pipe2` is not in Swift's Glibc module), so that
    /// only the ends `posix_spawn` duplicates reach the child.
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// A NULL-terminated array of C strings for the duration of `body`.
    private static func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> T)
        -> T
    {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
