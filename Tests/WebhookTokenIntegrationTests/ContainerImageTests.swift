import Foundation
import Testing

/// The OCI image from `.ci/package --image`, run the only way these machines can: its layers
/// unpacked into a root filesystem, its entrypoint chrooted into that in fresh mount, PID and
/// network namespaces (`unshare`, loopback up), as the image's user. The client comes from the
/// same image, through the socket directory. And the Kubernetes manifests, checked against it.
@Suite(.serialized, .enabled(if: getuid() == 0 && PackagingArtifacts.available(PackagingArtifacts.imageArchive)))
struct ContainerImageTests {
    /// The unpacked image: its root filesystem and its configuration.
    struct Image {
        let directory: TemporaryDirectory
        var rootfs: String { directory.file("rootfs") }
        let config: [String: Any]
        var user: String { config["User"] as? String ?? "" }
        var entrypoint: [String] { config["Entrypoint"] as? [String] ?? [] }
        var command: [String] { config["Cmd"] as? [String] ?? [] }
        var volumes: [String] { (config["Volumes"] as? [String: Any])?.keys.sorted() ?? [] }
        var environment: [String] { config["Env"] as? [String] ?? [] }
        /// The value of an environment variable the image sets.
        func variable(_ name: String) -> String? {
            environment.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }

        static func unpack() async throws -> Image {
            let directory = try TemporaryDirectory.make(prefix: "wt-img")
            let layout = directory.file("layout")
            try FileManager.default.createDirectory(atPath: layout, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory.file("rootfs"), withIntermediateDirectories: true)
            try await must("/usr/bin/tar", ["-xf", PackagingArtifacts.imageArchive, "-C", layout])
            func json(_ path: String) throws -> [String: Any] {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            }
            /// The file of a content descriptor (`{"digest": "sha256:…"}`) in the OCI layout.
            func blob(_ descriptor: Any?) throws -> String {
                let digest = try #require((descriptor as? [String: Any])?["digest"] as? String)
                return "\(layout)/blobs/\(digest.replacingOccurrences(of: ":", with: "/"))"
            }
            let index = try json("\(layout)/index.json")
            let manifest = try json(try blob((index["manifests"] as? [Any])?.first))
            let configuration = try json(try blob(manifest["config"]))
            for layer in manifest["layers"] as? [Any] ?? [] {
                try await must("/usr/bin/tar", ["-xf", try blob(layer), "-C", directory.file("rootfs")])
            }
            return Image(directory: directory, config: try #require(configuration["config"] as? [String: Any]))
        }

        /// `uid:gid` as numbers.
        var ids: (uid: String, gid: String) {
            let parts = user.split(separator: ":").map(String.init)
            return (parts.first ?? "", parts.count > 1 ? parts[1] : parts.first ?? "")
        }
    }

    @discardableResult
    static func must(_ executable: String, _ arguments: [String]) async throws -> String {
        let result = try await Shell.run(executable, arguments)
        guard result.status == 0 else {
            throw TestFailure(
                "\(executable) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.standardError)")
        }
        return result.standardOutput
    }

    /// A host directory for the socket volume (owned by the image's user, as an emptyDir with
    /// the pod's fsGroup is) and one for /etc/webhook-tokend.
    struct Volumes {
        let socket: TemporaryDirectory
        let etc: TemporaryDirectory
        init(_ image: Image) throws {
            socket = try TemporaryDirectory.make(prefix: "wt-sock")
            etc = try TemporaryDirectory.make(prefix: "wt-etc")
            chown(socket.path, uid_t(image.ids.uid) ?? 0, gid_t(image.ids.gid) ?? 0)
            chmod(socket.path, 0o755)
            chmod(etc.path, 0o755)
        }
        func remove() {
            socket.remove()
            etc.remove()
        }
    }

    /// A shell script (run by the host's /bin/sh, before the chroot) that mounts into the image,
    /// in its own mount namespace, what a container runtime would: /proc (Swift reads a process's
    /// arguments from /proc/self/cmdline), a minimal /dev, and the volumes.
    static func mountVolumes(_ image: Image, _ volumes: Volumes) -> String {
        """
        mount -t proc proc '\(image.rootfs)/proc'
        mount -t tmpfs -o mode=0755,nosuid,size=64k dev '\(image.rootfs)/dev'
        for device in null zero random urandom; do
            touch '\(image.rootfs)'/dev/$device
            mount --bind /dev/$device '\(image.rootfs)'/dev/$device
        done
        mount --bind '\(volumes.socket.path)' '\(image.rootfs)/run/webhook-tokend'
        mount --bind '\(volumes.etc.path)' '\(image.rootfs)/etc/webhook-tokend'
        """
    }

    /// Starts the image's entrypoint with `arguments` (the image's CMD if nil) in fresh mount,
    /// PID and network namespaces, after `prelude` (host commands, inside the namespaces).
    static func runEntrypoint(
        _ image: Image, _ volumes: Volumes, arguments: [String]? = nil, prelude: String = "", log: OutputCollector
    ) throws -> ChildProcess {
        let command = (image.entrypoint + (arguments ?? image.command)).map { "'\($0)'" }.joined(separator: " ")
        let environment = image.environment.map { "'\($0)'" }.joined(separator: " ")
        let script = """
            set -e
            ip link set lo up
            \(mountVolumes(image, volumes))
            \(prelude)
            exec /usr/bin/env -i \(environment) /usr/sbin/chroot --userspec='\(image.user)' '\(image.rootfs)' \(command)
            """
        return try ChildProcess(
            "/usr/bin/unshare",
            ["--mount", "--pid", "--net", "--fork", "--kill-child=SIGTERM", "--", "/bin/sh", "-c", script],
            environment: ChildProcess.environmentWithoutSystemd, stdout: log.writeEnd, stderr: log.writeEnd)
    }

    /// SIGTERM to the entrypoint (PID 1 of its namespace: unshare's child; unshare itself ignores
    /// SIGTERM while it waits), and its exit.
    static func stop(_ unshare: ChildProcess) async {
        let pid = unshare.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        for child in children.split(separator: " ").compactMap({ pid_t($0) }) {
            kill(child, SIGTERM)
        }
        await unshare.waitForExit()
    }

    /// The image's client, as another user (uid 1000 in the socket's group, like an application
    /// container in the pod), in a mount namespace of its own that sees the same socket volume.
    static func client(_ image: Image, _ volumes: Volumes, _ arguments: [String], asImageUser: Bool = false)
        async throws
        -> Shell.Result
    {
        let user = asImageUser ? "--userspec='\(image.user)'" : "--userspec=1000:1000 --groups=\(image.ids.gid)"
        let script = """
            set -e
            \(mountVolumes(image, volumes))
            exec /usr/bin/env -i /usr/sbin/chroot \(user) '\(image.rootfs)' /usr/bin/webhook-token \
                \(arguments.map { "'\($0)'" }.joined(separator: " "))
            """
        return try await Shell.run("/usr/bin/unshare", ["--mount", "--", "/bin/sh", "-c", script])
    }

    @Test("the image: only the daemon, the client and what they load; a non-root numeric user; the socket volume")
    func imageContents() async throws {
        let image = try await Image.unpack()
        defer { image.directory.remove() }
        let files = try await Self.must("/usr/bin/find", [image.rootfs, "-type", "f", "-printf", "%P\n"]).split(
            separator: "\n")
        #expect(files.contains("usr/sbin/webhook-tokend") && files.contains("usr/bin/webhook-token"))
        let executables = try await Self.must(
            "/usr/bin/find", [image.rootfs, "-type", "f", "-perm", "/111", "-printf", "%P\n"]
        )
        .split(separator: "\n").filter { !$0.contains(".so") }
        #expect(Set(executables) == ["usr/sbin/webhook-tokend", "usr/bin/webhook-token"], "\(executables)")
        #expect(
            !files.contains {
                $0.hasSuffix("/sh") || $0.contains("bin/bash") || $0.contains("dpkg") || $0.contains("apt")
            })
        let (uid, gid) = image.ids
        #expect(UInt32(uid).map { $0 != 0 } == true && UInt32(gid) != nil, "User is \(image.user)")
        #expect(image.volumes == ["/run/webhook-tokend"])
        #expect(image.entrypoint == ["/usr/sbin/webhook-tokend"])
    }

    @Test(
        "--dev: the entrypoint serves in its own namespaces, and the image's client gets the token through the volume")
    func devMode() async throws {
        let image = try await Image.unpack()
        let volumes = try Volumes(image)
        defer {
            image.directory.remove()
            volumes.remove()
        }
        let log = try OutputCollector()
        let daemon = try Self.runEntrypoint(
            image, volumes, arguments: ["--dev", "--socket", "/run/webhook-tokend/token.sock"], log: log)
        log.closeWriteEnd()
        try await withCleanup {
            try await eventually("a token from the dev-mode daemon") {
                guard daemon.isRunning else { throw TestFailure("the daemon exited: \(log.text)") }
                return try await Self.client(image, volumes, [], asImageUser: true).status == 0
            }
            let token = try await Self.client(image, volumes, ["--json"], asImageUser: true)
            #expect(token.status == 0 && token.standardOutput.contains(#""token_type":"Bearer""#), "\(token)")
            #expect(try await Self.client(image, volumes, ["status", "--quiet"], asImageUser: true).status == 0)
            // SIGTERM: a clean stop removes the socket file.
            await Self.stop(daemon)
            try await eventually("the socket file removed by a clean stop") {
                !FileManager.default.fileExists(atPath: volumes.socket.file("token.sock"))
            }
        } cleanup: {
            if daemon.isRunning { await Self.stop(daemon) }
        }
    }

    @Test(
        "as a real broker (the image's CMD, HTTPS to the emulator, a mounted credential): a member gets the token"
    )
    func realBroker() async throws {
        let image = try await Image.unpack()
        let volumes = try Volumes(image)
        defer {
            image.directory.remove()
            volumes.remove()
        }
        let certificates = await TestCertificates.shared
        let port = 8443
        let secret = "image-s3cret"
        let gid = image.ids.gid
        // The configuration and the secret as the manifests mount them: the secret readable by
        // the image's group only (a Secret volume with defaultMode 0440 and the pod's fsGroup).
        _ = try volumes.etc.write(
            "config.toml",
            """
            [endpoint]
            token_url = "https://127.0.0.1:\(port)/tenant/login/token"
            ca_file = "/etc/webhook-tokend/ca.pem"

            [credentials]
            client_id = "image-client"

            [socket]
            path = "/run/webhook-tokend/token.sock"
            mode = "0660"
            """, mode: 0o644)
        let credentials = try #require(
            image.variable("CREDENTIALS_DIRECTORY"), "the image sets no CREDENTIALS_DIRECTORY")
        #expect(credentials == "/etc/webhook-tokend/credentials")
        try FileManager.default.createDirectory(
            atPath: volumes.etc.file("credentials"), withIntermediateDirectories: true)
        let secretFile = try volumes.etc.write("credentials/client-secret", secret + "\n", mode: 0o440)
        chown(secretFile, 0, gid_t(gid) ?? 0)
        try FileManager.default.copyItem(atPath: certificates.caCertificate, toPath: volumes.etc.file("ca.pem"))
        let endpointSecret = try image.directory.write("endpoint-secret", secret + "\n", mode: 0o600)

        // The emulator (a host binary) in the same network namespace, up before the daemon starts.
        let emulatorLog = image.directory.file("emulator.log")
        let prelude = """
            '\(Binaries.emulator)' --host 127.0.0.1 --port \(port) --client-id image-client \
                --client-secret-file '\(endpointSecret)' --tls-cert '\(certificates.serverCertificate)' \
                --tls-key '\(certificates.serverKey)' >'\(emulatorLog)' 2>&1 &
            for i in $(seq 200); do grep -q listening '\(emulatorLog)' 2>/dev/null && break; sleep 0.05; done
            """
        let log = try OutputCollector()
        let daemon = try Self.runEntrypoint(image, volumes, prelude: prelude, log: log)
        log.closeWriteEnd()
        try await withCleanup {
            try await eventually(timeout: .seconds(20), "a token from the broker in the image") {
                guard daemon.isRunning else { throw TestFailure("the daemon exited: \(log.text)") }
                return try await Self.client(image, volumes, ["status", "--quiet"]).status == 0
            }
            let token = try await Self.client(image, volumes, [])
            #expect(token.status == 0 && token.standardOutput.count > 20, "\(token)")
            let status = try await Self.client(image, volumes, ["status"])
            #expect(status.standardOutput.hasPrefix("state:          valid"), "\(status)")
            // Not in the socket's group: refused by the socket's permissions.
            let outsider = try await Shell.run(
                "/usr/bin/unshare",
                [
                    "--mount", "--", "/bin/sh", "-c",
                    """
                    \(Self.mountVolumes(image, volumes))
                    exec /usr/sbin/chroot --userspec=1000:1000 '\(image.rootfs)' /usr/bin/webhook-token
                    """,
                ])
            #expect(outsider.status == 77, "\(outsider)")
            await Self.stop(daemon)
            let output = await log.finish()
            #expect(!output.contains(secret))
        } cleanup: {
            if daemon.isRunning { await Self.stop(daemon) }
        }
    }

    @Test(
        "the Kubernetes manifests match the image: probe command, socket volume, user, secret mode, config paths",
        arguments: ["sidecar.yaml", "daemonset.yaml"])
    func kubernetesManifests(file: String) async throws {
        let image = try await Image.unpack()
        defer { image.directory.remove() }
        let documents = try await KubernetesManifest.load("\(SystemdContainer.repository)/deploy/kubernetes/\(file)")
        let configMap = try #require(documents.first { $0["kind"] as? String == "ConfigMap" })
        let config = try #require((configMap["data"] as? [String: Any])?["config.toml"] as? String)
        let workloads = documents.filter { ["Deployment", "DaemonSet"].contains($0["kind"] as? String ?? "") }
        #expect(workloads.count == 1)
        let workload = try #require(workloads.first)
        let podSpec = try #require(
            ((workload["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let volumes = podSpec["volumes"] as? [[String: Any]] ?? []
        let containers =
            (podSpec["initContainers"] as? [[String: Any]] ?? []) + (podSpec["containers"] as? [[String: Any]] ?? [])
        let broker = try #require(containers.first { ($0["image"] as? String ?? "").contains("/webhook-tokend:") })
        let mounts = broker["volumeMounts"] as? [[String: Any]] ?? []
        func volume(mountedAt path: String) -> [String: Any]? {
            let name = mounts.first { $0["mountPath"] as? String == path }?["name"] as? String
            return volumes.first { $0["name"] as? String == name }
        }

        if workload["kind"] as? String == "Deployment" {
            // A native sidecar: an init container that keeps running, the socket in memory.
            #expect(broker["restartPolicy"] as? String == "Always")
            #expect(
                (volume(mountedAt: image.volumes.first ?? "")?["emptyDir"] as? [String: Any])?["medium"] as? String
                    == "Memory")
        } else {
            #expect(
                (volume(mountedAt: image.volumes.first ?? "")?["hostPath"] as? [String: Any])?["path"] as? String != nil
            )
        }
        // The readiness probe runs the image's client, which exists there.
        let probe = try #require(
            ((broker["readinessProbe"] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String])
        #expect(Array(probe.dropFirst()) == ["status", "--quiet"])
        #expect(
            FileManager.default.isExecutableFile(atPath: image.rootfs + (probe.first ?? "/missing")),
            "\(probe) is not in the image")
        // The socket volume is the image's, and the configured socket lies in it.
        #expect(
            image.volumes.count == 1 && volume(mountedAt: image.volumes[0]) != nil,
            "the socket volume \(image.volumes) is not mounted")
        #expect(config.contains("path = \"\(image.volumes[0])/token.sock\""))
        // The image's user, and the secret: a Secret volume not readable by everyone, on the credentials directory.
        let security = broker["securityContext"] as? [String: Any] ?? [:]
        #expect("\(security["runAsUser"] ?? "")" == image.ids.uid && "\(security["runAsGroup"] ?? "")" == image.ids.gid)
        let secretMount = try #require(
            mounts.first { volume(mountedAt: $0["mountPath"] as? String ?? "")?["secret"] != nil })
        let secret = try #require(
            volume(mountedAt: secretMount["mountPath"] as? String ?? "")?["secret"] as? [String: Any])
        #expect(
            ((secret["defaultMode"] as? Int) ?? 0o644) & 0o007 == 0, "the secret is readable by everyone: \(secret)")
        #expect(secretMount["mountPath"] as? String == image.variable("CREDENTIALS_DIRECTORY"))
        #expect(!config.contains("client_secret"), "the configuration names a secret source besides the credential")
        // The configuration at the path the image's CMD reads.
        let configPath = try #require(image.command.last)
        #expect(
            mounts.contains {
                $0["mountPath"] as? String == configPath && volume(mountedAt: configPath)?["configMap"] != nil
            })
    }
}

/// A multi-document Kubernetes YAML file, parsed by PyYAML (Debian's python3-yaml) into JSON.
enum KubernetesManifest {
    static func load(_ path: String) async throws -> [[String: Any]] {
        let script =
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))"
        let result = try await Shell.run("/usr/bin/python3", ["-c", script, path])
        guard result.status == 0 else { throw TestFailure("cannot parse \(path): \(result.standardError)") }
        return try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [[String: Any]])
    }
}
