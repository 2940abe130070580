import Foundation
import Testing

/// `webhook-tokend --check-config` and the start-up refusals of bad configuration files.
@Suite("Configuration checks of the daemon binary")
struct CheckConfigTests {
    @Test func printsTheEffectiveConfigurationWithTheSecretRedacted() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let path = try directory.write(
            "config.toml",
            """
            [endpoint]
            base_url = "https://v1.api.us.janrain.com"
            customer_id = "01000000-0000-3000-9000-000000000000"
            [credentials]
            client_id = "abc"
            client_secret = "very-secret-value"
            """, mode: 0o600)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 0)
        #expect(
            result.standardOutput.contains(
                #"token_url = "https://v1.api.us.janrain.com/01000000-0000-3000-9000-000000000000/login/token""#))
        #expect(result.standardOutput.contains(#"client_secret = "<redacted>""#))
        #expect(result.standardOutput.contains("configuration OK"))
        #expect(!result.standardOutput.contains("very-secret-value"))
        #expect(!result.standardError.contains("very-secret-value"))
    }

    @Test func refusesAnInlineSecretInAFileOthersCanRead() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let path = try directory.write(
            "config.toml",
            """
            [endpoint]
            token_url = "https://idp.example.com/oauth2/token"
            [credentials]
            client_id = "abc"
            client_secret = "very-secret-value"
            """, mode: 0o644)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 78)
        #expect(
            result.standardError.contains(
                "an inline client_secret is refused because \(path) is accessible by group or others (mode 0644)"))
        #expect(!result.standardError.contains("very-secret-value"))
    }

    @Test func refusesAGroupWritableSecretFile() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let secret = try directory.write("secret", "s\n", mode: 0o620)
        let path = try directory.write(
            "config.toml",
            """
            [endpoint]
            token_url = "https://idp.example.com/oauth2/token"
            [credentials]
            client_id = "abc"
            client_secret_file = "\(secret)"
            """, mode: 0o644)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 78)
        #expect(result.standardError.contains("writable by group or others (mode 0620)"))
    }

    @Test func usesTheSystemdCredentialWhenNoSecretIsConfigured() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        _ = try directory.write("client-secret", "from-credential\n", mode: 0o400)
        let path = try directory.write(
            "config.toml",
            """
            [endpoint]
            token_url = "https://idp.example.com/oauth2/token"
            [credentials]
            client_id = "abc"
            """, mode: 0o644)
        let withCredential = try await Shell.run(
            Binaries.daemon, ["--check-config", "--config", path],
            environment: ["CREDENTIALS_DIRECTORY": directory.path])
        #expect(withCredential.status == 0)
        #expect(withCredential.standardOutput.contains("client secret from systemd credential client-secret"))
        // Outside the unit the credential cannot be checked, which --check-config says...
        let outside = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(outside.status == 0)
        #expect(outside.standardOutput.contains("not checked"))
        // ...but the daemon itself refuses to start without a secret.
        let daemon = try await Shell.run(Binaries.daemon, ["--config", path], environment: [:])
        #expect(daemon.status == 78)
        #expect(daemon.standardError.contains("no client secret"))
        // And an empty credentials directory is a missing secret even for --check-config.
        let emptyDirectory = try TemporaryDirectory.make(prefix: "wtcred")
        defer { emptyDirectory.remove() }
        let empty = try await Shell.run(
            Binaries.daemon, ["--check-config", "--config", path],
            environment: ["CREDENTIALS_DIRECTORY": emptyDirectory.path])
        #expect(empty.status == 78)
    }

    @Test func reportsEveryProblemWithFileKeyAndLine() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let path = try directory.write(
            "config.toml",
            """
            [endpoint]
            token_url = "http://idp.example.com/token"
            scpoe = "x"
            [credentials]
            client_id = "abc"
            client_secret_file = "/nonexistent"
            [socket]
            mode = 660
            [renewal]
            retry_max = "5 minutes"
            """, mode: 0o600)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 78)
        let text = result.standardError
        #expect(text.contains("\(path):2: endpoint.token_url"))
        #expect(text.contains("\(path):3: endpoint.scpoe: unknown key; did you mean \"scope\"?"))
        #expect(
            text.contains("\(path):8: socket.mode: found a integer")
                || text.contains("\(path):8: socket.mode: found an integer"))
        #expect(text.contains("\(path):10: renewal.retry_max: found \"5 minutes\""))
    }

    @Test func missingFileIsAClearError() async throws {
        let result = try await Shell.run(
            Binaries.daemon, ["--check-config", "--config", "/nonexistent/config.toml"], environment: [:])
        #expect(result.status == 78)
        #expect(
            result.standardError.contains(
                "cannot open the configuration file /nonexistent/config.toml: No such file or directory"))
    }

    static let minimal = """
        [endpoint]
        token_url = "https://idp.example.com/oauth2/token"
        [credentials]
        client_id = "abc"
        """

    /// An unknown name passed the check, and the next start exited 78.
    @Test(arguments: [
        ("[access]\nallowed_users = [\"no-such-user-xyz\"]", #"the user "no-such-user-xyz" does not exist"#),
        ("[access]\nallowed_groups = [\"no-such-group-xyz\"]", #"the group "no-such-group-xyz" does not exist"#),
        ("[socket]\ngroup = \"no-such-group-xyz\"", #"the group "no-such-group-xyz" does not exist"#),
    ])
    func namesAreResolvedByTheCheckToo(table: String, message: String) async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let secret = try directory.write("secret", "s\n", mode: 0o600)
        let path = try directory.write(
            "config.toml", Self.minimal + "\nclient_secret_file = \"\(secret)\"\n" + table, mode: 0o600)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 78)
        #expect(result.standardError.contains(message), "\(result.standardError)")
    }

    /// Only mode bits were checked: a file another user owns can be rewritten by that user.
    @Test func refusesAConfigurationOwnedByAnotherUser() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let path = try directory.write("config.toml", Self.minimal, mode: 0o600)
        chown(path, 65534, 65534)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 78)
        #expect(
            result.standardError.contains("is owned by uid 65534, neither root nor the daemon's user"),
            "\(result.standardError)")
    }

    /// With the unit's Group=webhook-token, a group-readable secret is readable by every consumer.
    @Test(arguments: [0o640, 0o604])
    func refusesASecretReadableByGroupOrOthers(mode: Int) async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let secret = try directory.write("secret", "s\n", mode: mode)
        let path = try directory.write(
            "config.toml", Self.minimal + "\nclient_secret_file = \"\(secret)\"\n", mode: 0o600)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 78)
        #expect(result.standardError.contains("is readable by group or others"), "\(result.standardError)")
    }

    @Test func refusesPlainHTTPToANameUnderLocalhost() async throws {
        let directory = try TemporaryDirectory.make(prefix: "wtcfg")
        defer { directory.remove() }
        let path = try directory.write(
            "config.toml",
            """
            [endpoint]
            token_url = "http://idp.localhost/token"
            [credentials]
            client_id = "abc"
            client_secret_file = "/nonexistent"
            """, mode: 0o600)
        let result = try await Shell.run(Binaries.daemon, ["--check-config", "--config", path], environment: [:])
        #expect(result.status == 78)
        #expect(result.standardError.contains(#"plain http is refused for the non-loopback host "idp.localhost""#))
    }
}
