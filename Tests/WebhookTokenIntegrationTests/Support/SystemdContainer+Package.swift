import Foundation

extension SystemdContainer {
    /// Where the container sees dist/ (read-only) and the Swift runtime the emulator needs.
    static let distInContainer = "/opt/webhook-tokend/dist"
    static let emulatorRuntime = "/opt/emulator-runtime"
    static let emulatorUnit = "token-endpoint.service"
    /// The toolchain, hidden in the container under an empty tmpfs.
    static let toolchain: String = {
        // The test binary links the toolchain's runtime; its directory names the toolchain root.
        let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
        let core =
            maps.split(separator: "\n").lazy.compactMap { line in
                line.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init)
            }.first { $0.hasSuffix("/libswiftCore.so") } ?? "/opt/swift/usr/lib/swift/linux/libswiftCore.so"
        // …/usr/lib/swift/linux/libswiftCore.so → the root above usr/.
        var url = URL(fileURLWithPath: core)
        for _ in 0..<5 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// A freshly booted systemd with nothing of webhook-tokend installed, and the Swift toolchain
    /// hidden (an empty tmpfs over its directory): the host the Debian package is for. It has
    /// dist/ at ``distInContainer``, and a token endpoint emulator unit (`token-endpoint.service`)
    /// whose debug-built binary finds the Swift runtime at ``emulatorRuntime`` only through
    /// LD_LIBRARY_PATH, so nothing else in the container can.
    static func withBareHost(_ body: (SystemdContainer) async throws -> Void) async throws {
        let state = try TemporaryDirectory.make(prefix: "wtp")
        let payload = state.file("payload")
        func put(_ path: String, _ contents: String, mode: Int = 0o644) throws {
            let target = payload + path
            try FileManager.default.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try contents.write(toFile: target, atomically: false, encoding: .utf8)
            chmod(target, mode_t(mode))
        }
        try put("/etc/token-endpoint/client-secret", secret + "\n", mode: 0o600)
        try put(
            "/etc/systemd/system/\(emulatorUnit)",
            """
            [Unit]
            Description=Token endpoint emulator for the webhook-tokend package tests

            [Service]
            Environment=LD_LIBRARY_PATH=\(emulatorRuntime)
            ExecStart=\(binaries)/token-endpoint-emulator --host 127.0.0.1 --port \(emulatorPort) \
                --client-id \(clientID) --client-secret-file /etc/token-endpoint/client-secret --expires-in 3600
            """)
        let options = [
            "--bind-ro=\(Binaries.directory):\(binaries)",
            "--bind-ro=\(PackagingArtifacts.dist):\(distInContainer)",
            "--bind-ro=\(toolchain)/usr/lib/swift/linux:\(emulatorRuntime)",
            "--tmpfs=\(toolchain):mode=0755",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["HARNESS_OWNER_PID"] = String(getpid())
        let result = try await Shell.run(
            "/bin/bash", [harness, "boot", state.path] + options, environment: environment)
        guard result.status == 0, let pid = Int32(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            _ = try? await Shell.run("/bin/bash", [harness, "teardown", state.path])
            throw TestFailure("container boot failed (\(result.status)): \(result.standardError)")
        }
        let container = SystemdContainer(directory: state.path, pid1: pid)
        do {
            try await body(container)
        } catch {
            let status =
                (try? await container.run(["systemctl", "--no-pager", "status", "webhook-tokend.service"]))?
                .standardOutput ?? ""
            let journal = (try? await container.run(["journalctl", "--no-pager", "-n", "60"]))?.standardOutput ?? ""
            print("--- container diagnostics ---\n\(status)\n\(journal)\n--- end ---")
            await container.teardown()
            throw error
        }
        await container.teardown()
    }
}
