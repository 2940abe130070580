import Foundation
import Testing
import WebhookTokenCore

/// The Debian package from `.ci/package`, installed with apt into a real systemd (PID 1 in a
/// throwaway container) that has no Swift toolchain, and taken through its life: fresh install,
/// configuration as the README says, upgrade, removal, purge.
@Suite(
    .serialized,
    .enabled(if: SystemdContainer.testsCanRun && PackagingArtifacts.available(PackagingArtifacts.debianPackage)))
struct DebianPackageTests {
    static let service = "webhook-tokend.service"
    static var deb: String {
        "\(SystemdContainer.distInContainer)/\((PackagingArtifacts.debianPackage as NSString).lastPathComponent)"
    }

    /// apt as an administrator runs it (no network needed: the dependencies are installed).
    @discardableResult
    func apt(_ container: SystemdContainer, _ arguments: String...) async throws -> String {
        let result = try await container.run(
            ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-o", "APT::Sandbox::User=root"] + arguments)
        guard result.status == 0 else {
            let output = result.standardError + result.standardOutput
            throw TestFailure("apt-get \(arguments.joined(separator: " ")) failed (\(result.status)): \(output)")
        }
        return result.standardOutput + result.standardError
    }

    /// The token as a member of the group webhook-token (not root) gets it.
    func memberGetsAToken(_ container: SystemdContainer) async throws -> Shell.Result {
        let gid = try await container.must("getent", "group", "webhook-token").split(separator: ":")[2]
        return try await container.run([
            "setpriv", "--reuid=65534", "--regid=65534", "--groups=\(gid)", "/usr/bin/webhook-token",
        ])
    }

    @Test("install, configure and start, upgrade, remove, purge — without a Swift toolchain on the host")
    func lifecycle() async throws {
        try await SystemdContainer.withBareHost { container in
            // No Swift here: the toolchain's directory is an empty tmpfs.
            #expect(try await container.run(["ls", "-A", SystemdContainer.toolchain]).standardOutput.isEmpty)
            // This host image forbids starting services in package scripts (Docker's policy-rc.d,
            // "exit 101"); a real host has none, so neither has the container.
            _ = try await container.run(["rm", "-f", "/usr/sbin/policy-rc.d"])

            // Fresh install: users, units, files; enabled, but down while the placeholder config is there.
            let installed = try await apt(container, "install", Self.deb)
            #expect(
                installed.contains("then: systemctl start webhook-tokend"), "no hint from the postinst:\n\(installed)")
            #expect(try await container.must("/usr/sbin/webhook-tokend", "--version") == DaemonVersion.string + "\n")
            #expect(try await container.must("/usr/bin/webhook-token", "--version").hasPrefix("webhook-token "))
            let linked = try await container.must("ldd", "/usr/sbin/webhook-tokend")
            #expect(!linked.contains("not found") && !linked.contains("swift"), "\(linked)")
            #expect(try await container.must("getent", "passwd", "webhook-tokend").hasPrefix("webhook-tokend:"))
            #expect(try await container.must("id", "-nG", "webhook-tokend").contains("webhook-token"))
            let unit = try await container.show(
                Self.service, ["LoadState", "UnitFileState", "ActiveState", "ExecStart"])
            #expect(
                unit["LoadState"] == "loaded" && unit["UnitFileState"] == "enabled"
                    && unit["ActiveState"] == "inactive", "\(unit)")
            #expect(unit["ExecStart"]?.contains("path=/usr/sbin/webhook-tokend") == true, "\(unit)")
            let socket = try await container.show(
                "webhook-tokend.socket", ["LoadState", "UnitFileState", "ActiveState"])
            #expect(
                socket["LoadState"] == "loaded" && socket["UnitFileState"] == "disabled"
                    && socket["ActiveState"] == "inactive", "\(socket)")
            #expect(
                try await container.must("stat", "-c", "%a %U %G", SystemdContainer.configPath)
                    == "640 root webhook-token\n")
            #expect(
                try await container.must("dpkg-query", "-W", "-f=${Conffiles}", "webhook-tokend").contains(
                    SystemdContainer.configPath))
            #expect(
                try await container.journal(Self.service).contains("-- No entries --"), "the service ran on install")

            // Manual pages and completions, where man and the shells look.
            for (section, page) in [("8", "webhook-tokend"), ("1", "webhook-token"), ("5", "webhook-tokend.toml")] {
                let path = try await container.must("man", "-w", section, page)
                #expect(path.hasPrefix("/usr/share/man/man\(section)/\(page).\(section)"), "\(path)")
                let text = try await container.run(["env", "MANPAGER=cat", "MANWIDTH=100", "man", section, page])
                #expect(
                    text.status == 0 && text.standardOutput.contains("SEE ALSO"),
                    "\(page)(\(section)): \(text.standardError)")
            }
            for file in [
                "/usr/share/bash-completion/completions/webhook-tokend",
                "/usr/share/bash-completion/completions/webhook-token",
                "/usr/share/zsh/vendor-completions/_webhook-tokend", "/usr/share/zsh/vendor-completions/_webhook-token",
                "/usr/share/fish/vendor_completions.d/webhook-tokend.fish",
                "/usr/share/fish/vendor_completions.d/webhook-token.fish",
            ] {
                #expect(try await container.run(["test", "-s", file]).status == 0, "\(file) is missing")
            }
            #expect(
                try await container.must("cat", "/usr/share/bash-completion/completions/webhook-tokend").contains(
                    "--check-config"))

            // Configured as the README says: a token for a member of webhook-token.
            try container.write(SystemdContainer.configPath, SystemdContainer.config(), mode: 0o640)
            try container.write(SystemdContainer.secretPath, SystemdContainer.secret + "\n", mode: 0o600)
            try await container.must("systemctl", "start", SystemdContainer.emulatorUnit, Self.service)
            var state = try await container.show(Self.service)
            #expect(state["ActiveState"] == "active" && state["SubState"] == "running", "\(state)")
            let token = try await memberGetsAToken(container)
            #expect(token.status == 0 && token.standardOutput.count > 20, "\(token.status): \(token.standardError)")

            // Upgrade (the same package again): restarted, and serving.
            let before = try #require(state["MainPID"])
            try await apt(container, "install", "--reinstall", Self.deb)
            try await eventually("the restarted service") {
                let now = try await container.show(Self.service)
                return now["SubState"] == "running" && now["MainPID"] != before
            }
            try await eventually("a token from the restarted service") {
                try await memberGetsAToken(container).status == 0
            }
            #expect(
                try await container.must("stat", "-c", "%a %G", SystemdContainer.configPath) == "640 webhook-token\n")
            #expect(
                try await container.must("cat", SystemdContainer.configPath).contains(SystemdContainer.clientID),
                "the upgrade replaced the edited conffile")

            // Removal: stopped, the units gone, the configuration and the users kept.
            try await apt(container, "remove", "webhook-tokend")
            state = try await container.show(Self.service, ["ActiveState", "LoadState", "UnitFileState"])
            #expect(state["ActiveState"] == "inactive" && state["LoadState"] == "not-found", "\(state)")
            #expect(
                try await container.run(["pgrep", "-x", "webhook-tokend"]).status != 0, "a daemon outlived the removal")
            #expect(try await container.run(["test", "-e", SystemdContainer.configPath]).status == 0)

            // Purge: /etc/webhook-tokend gone, with the secret; the system users stay (Debian policy).
            try await apt(container, "purge", "webhook-tokend")
            #expect(
                try await container.run(["test", "-e", "/etc/webhook-tokend"]).status != 0,
                "purge left /etc/webhook-tokend")
            let wants = try await container.run(["find", "/etc/systemd/system", "-name", "webhook-tokend*"])
            #expect(wants.standardOutput.isEmpty, "purge left enablement links: \(wants.standardOutput)")
            #expect(try await container.run(["getent", "passwd", "webhook-tokend"]).status == 0)
            #expect(try await container.run(["getent", "group", "webhook-token"]).status == 0)
        }
    }

    @Test("the package holds the expected files, and depends only on what dpkg-shlibdeps found (and systemd-sysusers)")
    func contents() async throws {
        let listing = try await Shell.run("/usr/bin/dpkg-deb", ["--contents", PackagingArtifacts.debianPackage])
        #expect(listing.status == 0, "\(listing.standardError)")
        let files = Set(
            listing.standardOutput.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("-") else { return nil }
                return line.split(separator: " ", omittingEmptySubsequences: true).last.map { String($0.dropFirst()) }
            })
        for file in [
            "/usr/sbin/webhook-tokend", "/usr/bin/webhook-token", "/etc/webhook-tokend/config.toml",
            "/lib/systemd/system/webhook-tokend.service", "/lib/systemd/system/webhook-tokend.socket",
            "/usr/lib/sysusers.d/webhook-tokend.conf", "/usr/share/doc/webhook-tokend/README.md.gz",
            "/usr/share/doc/webhook-tokend/examples/config.toml",
            "/usr/share/doc/webhook-tokend/examples/config.generic-oauth.toml",
            "/usr/share/doc/webhook-tokend/examples/config.multi-profile.toml",
        ] {
            #expect(files.contains(file), "\(file) is not in the package")
        }
        // The package's version is the daemon's (debian/changelog's upstream part: 0.1.0 or 0.1.0-2).
        #expect(PackagingArtifacts.version.split(separator: "-").first.map(String.init) == DaemonVersion.string)
        let depends = try await Shell.run(
            "/usr/bin/dpkg-deb", ["--field", PackagingArtifacts.debianPackage, "Depends"])
        let names = Set(
            depends.standardOutput.split(separator: ",").compactMap {
                $0.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").first.map(String.init)
            })
        // (systemd, or another systemd-sysusers, from dh_installsysusers: it creates the users.)
        let expected: Set = ["systemd", "libc6", "libsystemd0", "libstdc++6", "libgcc-s1", "zlib1g"]
        #expect(names.isSubset(of: expected) && names.contains("libsystemd0"), "\(depends.standardOutput)")
    }
}
