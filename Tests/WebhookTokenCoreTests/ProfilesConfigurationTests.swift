import Testing
import WebhookTokenCore

private let file = "/etc/webhook-tokend/config.toml"

private func parse(_ text: String) throws(ConfigurationError) -> Configuration {
    try ConfigurationParser.parse(text, file: file)
}

private func problems(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    do throws(ConfigurationError) {
        let configuration = try parse(text)
        Issue.record("expected a refusal, got \(configuration)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.issues.map(\.description)
    }
}

/// Identity Cloud webhooks + Hosted Login configuration, as the profiles issue describes it.
private let twoProfiles = """
    [renewal]
    retry_max = "30s"
    [access]
    allowed_groups = ["webhook-token"]

    [profiles.webhooks.endpoint]
    base_url = "https://v1.api.us.janrain.com"
    customer_id = "abc"
    scope = "*:webhooks/**"
    [profiles.webhooks.credentials]
    client_id = "w"
    client_secret_file = "/etc/webhook-tokend/webhooks.secret"

    [profiles.hosted-login.endpoint]
    base_url = "https://v1.api.us.janrain.com"
    customer_id = "abc"
    scope = "*:config/**"
    [profiles.hosted-login.credentials]
    client_id = "h"
    [profiles.hosted-login.renewal]
    retry_initial = "2s"
    [profiles.hosted-login.access]
    allowed_users = ["idp-admin"]
    """

@Suite struct ProfilesConfigurationTests {
    @Test func theSingleTokenFormIsTheProfileNamedDefault() throws {
        let configuration = try parse(
            """
            [endpoint]
            token_url = "https://idp.example/token"
            [credentials]
            client_id = "c"
            """)
        #expect(configuration.profiles.map(\.name) == ["default"])
        #expect(configuration.profiles[0].credentials.secretSource == .systemdCredential(name: "client-secret"))
    }

    @Test func namedProfilesTakeTheTopLevelDefaultsKeyByKeyAndReplaceAccess() throws {
        let configuration = try parse(twoProfiles)
        #expect(configuration.profiles.map(\.name) == ["hosted-login", "webhooks"])
        let webhooks = try #require(configuration.profile(named: "webhooks"))
        let hostedLogin = try #require(configuration.profile(named: "hosted-login"))
        #expect(webhooks.endpoint.scope == "*:webhooks/**")
        #expect(hostedLogin.endpoint.scope == "*:config/**")
        #expect(webhooks.renewal.retryMaximum == .seconds(30))
        #expect(webhooks.renewal.retryInitial == .seconds(1))
        #expect(hostedLogin.renewal.retryMaximum == .seconds(30), "the top-level key still applies")
        #expect(hostedLogin.renewal.retryInitial == .seconds(2), "the profile's key overrides it")
        #expect(webhooks.access.allowedGroups == [.name("webhook-token")])
        #expect(hostedLogin.access.allowedGroups == [], "a profile's [access] replaces the default")
        #expect(hostedLogin.access.allowedUsers == [.name("idp-admin")])
        #expect(hostedLogin.credentials.secretSource == .systemdCredential(name: "client-secret-hosted-login"))
    }

    @Test func theDefaultProfileComesFirst() throws {
        let configuration = try parse(
            """
            [endpoint]
            token_url = "https://idp.example/token"
            [credentials]
            client_id = "c"
            [profiles.aaa.endpoint]
            token_url = "https://idp.example/token"
            [profiles.aaa.credentials]
            client_id = "a"
            """)
        #expect(configuration.profiles.map(\.name) == ["default", "aaa"])
    }

    @Test(arguments: ["Webhooks", "-x", "a_b", "a.b", String(repeating: "a", count: 64)])
    func profileNamesAreLowerCaseLettersDigitsAndDashes(name: String) {
        let found = problems(
            """
            [profiles."\(name)".endpoint]
            token_url = "https://idp.example/token"
            [profiles."\(name)".credentials]
            client_id = "c"
            """)
        #expect(found.count == 1)
        #expect(found.first?.contains("lower-case letters, digits and dashes") == true, "\(found)")
    }

    @Test func aProfilesErrorsNameItsTable() {
        #expect(
            problems(
                """
                [profiles.x.endpoint]
                token_url = "https://idp.example/token"
                scpoe = "a"
                [profiles.x.credentials]
                client_id = "c"
                [profiles.x.renewals]
                """
            ).sorted() == [
                #"\#(file):3: profiles.x.endpoint.scpoe: unknown key; did you mean "scope"?"#,
                #"\#(file):6: profiles.x.renewals: unknown key; did you mean "renewal"?"#,
            ])
        #expect(
            problems(
                """
                [profiles.x.credentials]
                client_id = "c"
                """) == [
                    "\(file): profiles.x.endpoint: missing: the [profiles.x.endpoint] table with token_url, or base_url and customer_id"
                ])
    }

    @Test func socketAndLoggingAreNotPerProfile() {
        let found = problems(
            """
            [profiles.x.endpoint]
            token_url = "https://idp.example/token"
            [profiles.x.credentials]
            client_id = "c"
            [profiles.x.socket]
            path = "/run/x.sock"
            """)
        #expect(found.count == 1)
        #expect(found.first?.contains("profiles.x.socket: unknown key") == true, "\(found)")
    }

    @Test func aDefaultProfileTwiceIsAConflict() {
        let found = problems(
            """
            [endpoint]
            token_url = "https://idp.example/token"
            [credentials]
            client_id = "c"
            [profiles.default.endpoint]
            token_url = "https://idp.example/token"
            [profiles.default.credentials]
            client_id = "d"
            """)
        #expect(found.contains { $0.contains("the profile \"default\" is also given by the top-level") }, "\(found)")
    }

    @Test func noProfileAtAllAsksForTheEndpoint() {
        #expect(
            problems("[socket]\npath = \"/run/x.sock\"\n") == [
                "\(file): endpoint: missing: the [endpoint] table with token_url, or base_url and customer_id",
                "\(file): credentials: missing: the [credentials] table with client_id",
            ])
    }

    @Test func severalProfilesRenderAndReadBack() throws {
        let configuration = try parse(twoProfiles)
        let rendered = configuration.renderedTOML()
        #expect(rendered.contains("[profiles.hosted-login.renewal]"))
        #expect(rendered.contains("# client secret: systemd credential \"client-secret-hosted-login\""))
        #expect(try parse(rendered) == configuration, "\(rendered)")
    }
}

/// The one table of keys: what the parser reads, what `--check-config` prints and what the
/// reference documents cannot drift apart.
@Suite struct ConfigurationKeyTableTests {
    /// A key the table lists but no builder reads would be silently ignored: so every key, given
    /// a value of an impossible type, must be refused by name.
    @Test(arguments: ConfigurationKey.all.map { "\($0.table.rawValue).\($0.name)" })
    func everyKeyInTheTableIsReadByTheParser(qualified: String) {
        let parts = qualified.split(separator: ".")
        let (table, key) = (String(parts[0]), String(parts[1]))
        var text = """
            [endpoint]
            token_url = "https://idp.example/token"
            [credentials]
            client_id = "c"

            """
        if table == "sink" || table == "hook" {
            // An array of tables, with its required key where that is not the one under test.
            let required = table == "sink" ? ("path", "\"/run/x\"") : ("command", "[\"/bin/true\"]")
            text += "[[\(table)]]\n\(key) = { nested = true }\n"
            if key != required.0 { text += "\(required.0) = \(required.1)\n" }
            let found = problems(text)
            #expect(found.contains { $0.contains("\(table)[1].\(key)") }, "\(found)")
            return
        }
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("\(key) = ") }) {
            text = text.replacingFirst(String(line), with: "\(key) = { nested = true }")
        } else if table == "endpoint" || table == "credentials" {
            text = text.replacingFirst("[\(table)]\n", with: "[\(table)]\n\(key) = { nested = true }\n")
        } else {
            text += "[\(table)]\n\(key) = { nested = true }\n"
        }
        let found = problems(text)
        #expect(found.contains { $0.contains("\(table).\(key)") }, "\(found)")
    }

    @Test func everyKeyIsRenderedByCheckConfig() throws {
        let configuration = try parse(
            """
            [endpoint]
            token_url = "https://idp.example/token"
            ca_file = "/etc/ca.pem"
            [credentials]
            client_id = "c"
            client_secret = "s"
            [socket]
            group = "g"
            max_connections_per_user = 9
            [proxy]
            socket = "/run/webhook-tokend/api.sock"
            [[sink]]
            path = "/run/webhook-tokend/sinks/t"
            group = "g"
            [[hook]]
            command = ["/bin/true"]
            """)
        let rendered = configuration.renderedTOML()
        #expect(try parse(rendered) == configuration.redactedForRendering, "\(rendered)")
        // base_url and customer_id are rendered as the token_url they make; client_secret_file is
        // the alternative to the inline secret shown here.
        let alternatives: Set<String> = ["base_url", "customer_id", "client_secret_file"]
        for key in ConfigurationKey.all where !alternatives.contains(key.name) {
            #expect(
                rendered.contains("\n\(key.name) = ") || rendered.hasPrefix("\(key.name) = "),
                "\(key.name) missing:\n\(rendered)")
        }
    }

    @Test func theSchemaIsTheKeyTable() {
        #expect(ConfigurationParser.schema["renewal"] == ConfigurationKey.names(of: .renewal))
        #expect(Set(ConfigurationParser.schema.keys) == Set(ConfigurationKey.Table.allCases.map(\.rawValue)))
    }
}

extension Configuration {
    /// What a rendering reads back as: an inline secret is shown redacted.
    fileprivate var redactedForRendering: Configuration {
        var copy = self
        for index in copy.profiles.indices {
            if case .inline = copy.profiles[index].credentials.secretSource {
                copy.profiles[index].credentials.secretSource = .inline(ClientSecret("<redacted>"))
            }
        }
        return copy
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let index = firstRange(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(index, with: replacement)
        return copy
    }
}

/// `[proxy]` and `[profiles.NAME.proxy]`: the authenticating proxy's table.
@Suite struct ProxyConfigurationTests {
    static let base = """
        [endpoint]
        base_url = "https://v1.api.us.janrain.com"
        customer_id = "c1"
        [credentials]
        client_id = "c"

        """

    static func messages(_ text: String) -> [String] {
        do {
            _ = try ConfigurationParser.parse(text, file: "config.toml")
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func theUpstreamDefaultsToTheOriginOfTheEndpointAndTheRestToTheDocumentedDefaults() throws {
        let configuration = try ConfigurationParser.parse(
            Self.base + "[proxy]\nsocket = \"/run/webhook-tokend/api.sock\"\n", file: "config.toml")
        let proxy = try #require(configuration.profiles[0].proxy)
        #expect(proxy.upstreamOrigin == "https://v1.api.us.janrain.com")
        #expect(proxy.allowedPathPrefixes.isEmpty && proxy.allows(path: "/anything"))
        #expect(proxy.maximumRequestBody == 1 << 20)
        #expect(proxy.timeout == .seconds(30))
        #expect(try ConfigurationParser.parse(configuration.renderedTOML(), file: "x") == configuration)
    }

    @Test func everySettingIsReadAndRendered() throws {
        let configuration = try ConfigurationParser.parse(
            Self.base + """
                [profiles.api.endpoint]
                token_url = "http://127.0.0.1:8080/oauth/token"
                [profiles.api.credentials]
                client_id = "d"
                [profiles.api.proxy]
                socket = "/run/api.sock"
                upstream = "http://127.0.0.1:9090"
                allowed_path_prefixes = ["/c1/webhooks/", "/c1/config/"]
                max_request_body = "64KiB"
                timeout = "5s"
                """, file: "config.toml")
        #expect(configuration.profiles[0].proxy == nil)
        let proxy = try #require(configuration.profile(named: "api")?.proxy)
        #expect(proxy.upstreamOrigin == "http://127.0.0.1:9090")
        #expect(proxy.allows(path: "/c1/config/x") && !proxy.allows(path: "/c1/login/token"))
        #expect(proxy.maximumRequestBody == 65536)
        #expect(proxy.timeout == .seconds(5))
        let rendered = configuration.renderedTOML()
        #expect(
            rendered.contains("[profiles.api.proxy]\nsocket = \"/run/api.sock\"\nupstream = \"http://127.0.0.1:9090\""))
        #expect(!rendered.contains("\n[proxy]"), "no proxy for the default profile")
        #expect(try ConfigurationParser.parse(rendered, file: "x") == configuration)
    }

    @Test func mistakesAreReportedByKey() {
        #expect(
            Self.messages(Self.base + "[proxy]\nupstream = \"https://a.example\"\n").contains {
                $0.contains("proxy.socket") && $0.contains("missing")
            })
        #expect(
            Self.messages(Self.base + "[proxy]\nsocket = \"/a.sock\"\nupstream = \"http://api.example\"\n")
                .contains { $0.contains("proxy.upstream") && $0.contains("plain http") })
        #expect(
            Self.messages(Self.base + "[proxy]\nsocket = \"/a.sock\"\nupstream = \"https://a.example/v1\"\n")
                .contains { $0.contains("proxy.upstream") && $0.contains("origin") })
        #expect(
            Self.messages(Self.base + "[proxy]\nsocket = \"/a.sock\"\nmax_request_body = \"1MB\"\n")
                .contains { $0.contains("proxy.max_request_body") })
        #expect(
            Self.messages(Self.base + "[proxy]\nsocket = \"/a.sock\"\nallowed_path_prefixes = [\"c1/\"]\n")
                .contains { $0.contains("proxy.allowed_path_prefixes") })
        #expect(
            Self.messages(Self.base + "[proxy]\nsocket = \"/run/webhook-tokend/token.sock\"\n")
                .contains { $0.contains("proxy.socket") && $0.contains("a path of its own") })
        #expect(
            Self.messages(Self.base + "[proxy]\nsokcet = \"/a.sock\"\n").contains {
                $0.contains("did you mean \"socket\"")
            })
    }

    @Test func sizesAreBinaryAndExact() {
        #expect(ByteSizeSyntax.parse("1MiB") == 1 << 20)
        #expect(ByteSizeSyntax.parse("512") == 512)
        #expect(ByteSizeSyntax.parse("1MB") == nil)
        #expect(ByteSizeSyntax.parse("99999999999999GiB") == nil)
        #expect(ByteSizeSyntax.format(1536 * 1024) == "1536KiB")
        #expect(ByteSizeSyntax.format(100) == "100B")
    }
}
