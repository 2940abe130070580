import Foundation

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A temporary directory with a short path (`sun_path` holds 108 bytes), removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    static func make(prefix: String) throws -> TemporaryDirectory {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        guard let pointer = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        let path = String(cString: pointer)
        chmod(path, 0o755)
        return TemporaryDirectory(path: path)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func write(_ name: String, _ contents: String, mode: Int = 0o600) throws -> String {
        let target = file(name)
        try contents.write(toFile: target, atomically: false, encoding: .utf8)
        chmod(target, mode_t(mode))
        return target
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs a command to completion.
enum Shell {
    struct Result {
        let status: Int32
        let standardOutput: String
        let standardError: String
    }

    /// Runs the command on a thread of its own while the calling task waits. Swift's cooperative
    /// pool has one thread per core (two here): a test that blocked one of them for the seconds a
    /// `systemctl` or `dpkg` call takes stalled every other test's tasks, and their timing
    /// assertions failed under the suite's load (a 0.5 s endpoint timeout measured at 8.2 s).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws
        -> Result
    {
        try await onOwnThread { try runBlocking(executable, arguments, environment: environment) }
    }

    /// Blocks the calling thread: for the few callers outside any task (a lazily computed fixture).
    static func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws
        -> Result
    {
        let out = try OutputCollector()
        let err = try OutputCollector()
        let child: ChildProcess
        do {
            child = try ChildProcess(
                executable, arguments, environment: environment ?? ProcessInfo.processInfo.environment,
                stdout: out.writeEnd, stderr: err.writeEnd)
        } catch {
            out.closeWriteEnd()
            err.closeWriteEnd()
            throw error
        }
        out.closeWriteEnd()
        err.closeWriteEnd()
        let standardOutput = out.finishBlocking()
        let standardError = err.finishBlocking()
        return Result(
            status: child.waitForExitBlocking(), standardOutput: standardOutput, standardError: standardError)
    }
}

/// Where `swift build` put the executables: next to the test bundle.
enum Binaries {
    static let directory: String = {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (executable as NSString).deletingLastPathComponent
    }()

    static var daemon: String { "\(directory)/webhook-tokend" }
    static var client: String { "\(directory)/webhook-token" }
    static var emulator: String { "\(directory)/token-endpoint-emulator" }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes. For waiting on processes and
/// sockets to come up — never for waiting on token lifetimes, which the tests make short.
func eventually(timeout: Duration = .seconds(10), _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("timed out after \(timeout) waiting for \(what)")
}

/// Runs a blocking `body` on a thread of its own and waits for it without holding a thread of
/// Swift's cooperative pool (see ``Shell/run(_:_:environment:)``). For whatever may block for
/// more than a moment: a process's exit, a long-poll, a read the daemon answers only after a timeout.
func onOwnThread<T: Sendable, Failure: Error>(_ body: @escaping @Sendable () throws(Failure) -> T) async throws(Failure)
    -> T
{
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, Failure>, Never>) in
        let thread = Thread { continuation.resume(returning: Result(catching: body)) }
        thread.stackSize = 512 * 1024
        thread.start()
    }
    return try result.get()
}

/// Runs `body`, then `cleanup` however `body` ends: a `defer` whose cleanup can await.
func withCleanup<T>(_ body: () async throws -> T, cleanup: () async -> Void) async throws -> T {
    let result: T
    do {
        result = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return result
}

/// Runs `body` on `count` real threads at once and collects the results. Blocking socket clients
/// must not run on Swift's cooperative pool (two threads here): they would run two at a time.
func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) async -> [T] {
    await withCheckedContinuation { continuation in
        let results = ResultsBox<T>(count: count)
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                results.set(index, body(index))
                group.leave()
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
        group.notify(queue: .global()) { continuation.resume(returning: results.values) }
    }
}

private final class ResultsBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [T?]

    init(count: Int) { storage = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: T) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    var values: [T] {
        lock.lock()
        defer { lock.unlock() }
        return storage.compactMap { $0 }
    }
}
