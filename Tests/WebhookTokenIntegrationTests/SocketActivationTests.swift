import Foundation
import Testing

/// Socket activation with systemd's own tool, `systemd-socket-activate`, which binds the socket,
/// and passes it to the daemon in `LISTEN_FDS` / `LISTEN_PID` as systemd would.
@Suite("socket activation (systemd-socket-activate)")
struct SocketActivationTests {
    /// From the `systemd` package, which the daemon's libsystemd comes with.
    static let activate = "/usr/bin/systemd-socket-activate"

    /// Runs the daemon under `systemd-socket-activate` with `options` (e.g. `-l PATH`).
    func launch(_ harness: DaemonHarness, options: [String]) throws -> ChildProcess {
        try harness.spawn(
            Self.activate, options + [Binaries.daemon, "--config", harness.configPath, "--log-level", "debug"],
            environment: ChildProcess.environmentWithoutSystemd)
    }

    func identity(_ path: String) -> (dev: UInt64, ino: UInt64)? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    @Test("the daemon adopts the passed socket, serves on it, and leaves it in place at exit")
    func adoptsPassedSocket() async throws {
        let harness = try await DaemonHarness(expiresIn: 3600)
        let path = harness.directory.file("activated.sock")
        let process = try launch(harness, options: ["-l", path])
        do {
            try await eventually("systemd-socket-activate to bind \(path)") { identity(path) != nil }
            let before = try #require(identity(path))
            // The first connection starts the daemon; it answers on the passed socket.
            try await eventually("a token on the passed socket") {
                (try? await socketRequestOnOwnThread(path, "GET", "/v1/token").status) == 200
            }
            #expect(harness.log().contains("Using the socket passed by systemd"), "\(harness.log())")
            #expect(access(harness.socketPath, F_OK) != 0, "the daemon bound its configured socket too")

            kill(process.processIdentifier, SIGTERM)
            try await eventually("the daemon to exit") { !process.isRunning }
            #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(harness.log())")
            // Not the daemon's socket: not unlinked.
            let after = identity(path)
            #expect(after?.dev == before.dev && after?.ino == before.ino, "the passed socket was removed or replaced")
        } catch {
            print(harness.log())
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            await harness.cleanup()
            throw error
        }
        await harness.cleanup()
    }

    @Test("a passed socket that is not a listening Unix stream socket is refused clearly")
    func refusesDatagramSocket() async throws {
        let harness = try await DaemonHarness(expiresIn: 3600)
        let path = harness.directory.file("datagram.sock")
        let process = try launch(harness, options: ["--datagram", "-l", path])
        do {
            try await eventually("systemd-socket-activate to bind \(path)") {
                var info = stat()
                return lstat(path, &info) == 0
            }
            // Activity on the socket starts the daemon (if it has not started yet).
            let sender = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(sender, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            close(sender)
            try await eventually("the daemon to exit") { !process.isRunning }
            #expect(process.terminationStatus == 1)
            #expect(harness.log().contains("is not a listening Unix stream socket"), "\(harness.log())")
        } catch {
            print(harness.log())
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            await harness.cleanup()
            throw error
        }
        await harness.cleanup()
    }
}
