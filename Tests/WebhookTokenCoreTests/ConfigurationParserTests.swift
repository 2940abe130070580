import Testing
import WebhookTokenCore

private let configFile = "/etc/webhook-tokend/config.toml"

/// The messages of a configuration the parser must refuse (recording a test issue if it accepts it).
private func problems(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    issues(text, sourceLocation: sourceLocation).map(\.description)
}

private func issues(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigurationError.Issue] {
    do {
        let configuration = try ConfigurationParser.parse(text, file: configFile)
        Issue.record(
            "expected the configuration to be refused, but it parsed as \(configuration)",
            sourceLocation: sourceLocation)
        return []
    } catch {
        return error.issues
    }
}

private func parsed(_ text: String) throws -> Configuration {
    try ConfigurationParser.parse(text, file: configFile)
}

/// A minimal valid file; tests append sections to it or replace its lines.
private let minimal = """
    [endpoint]
    token_url = "https://v1.api.us.janrain.com/abc-123/login/token"

    [credentials]
    client_id = "client-1"
    client_secret_file = "/etc/webhook-tokend/client-secret"

    """

private let durationExpectation = #"a duration such as "30s", "5m", "1h30m" or "500ms""#

@Suite struct ConfigurationParserTests {
    // MARK: - Errors

    @Test func syntaxErrorNamesFileAndLine() {
        let found = issues(
            """
            [endpoint]
            token_url = "https://v1.api.us.janrain.com/abc-123/login/token"
            scope = "unterminated
            [credentials]
            client_id = "client-1"
            """)
        #expect(found.count == 1)
        let issue = found.first
        #expect(issue?.line == 3)
        #expect(issue?.key == nil)
        #expect(issue?.description.hasPrefix("\(configFile):3: not valid TOML: ") == true)
        if case .syntax? = issue?.problem {
        } else {
            Issue.record("expected a syntax problem, got \(String(describing: issue))")
        }
    }

    @Test func unknownKeySuggestsTheClosestKnownKey() {
        #expect(
            problems(
                """
                [endpoint]
                token_url = "https://v1.api.us.janrain.com/abc-123/login/token"
                scpoe = "*:webhooks/**"

                [credentials]
                client_id = "client-1"
                """) == [#"\#(configFile):3: endpoint.scpoe: unknown key; did you mean "scope"?"#])
    }

    @Test func unknownKeyFarFromAnyKnownKeyListsTheKnownKeys() {
        #expect(
            problems(
                minimal + """
                    [socket]
                    colour = "blue"
                    """) == [
                    "\(configFile):8: socket.colour: unknown key; expected one of path, mode, group, max_connections, max_connections_per_user, header_timeout, idle_timeout"
                ])
    }

    @Test func unknownTableSuggestsTheClosestKnownTable() {
        #expect(
            problems(
                minimal + """
                    [loging]
                    level = "debug"
                    """) == [#"\#(configFile):7: loging: unknown key; did you mean "logging"?"#])
    }

    @Test func unknownTableFarFromAnyKnownTableListsTheTables() {
        #expect(
            problems(
                minimal + """
                    [metrics]
                    port = 9100
                    """) == [
                    "\(configFile):7: metrics: unknown key; expected one of [access], [credentials], [endpoint], [hook], [logging], [profiles], [proxy], [renewal], [sink], [socket]"
                ])
    }

    @Test func valueOfTheWrongTypeNamesWhatWasFoundAndExpected() {
        #expect(
            problems(
                """
                [endpoint]
                token_url = "https://v1.api.us.janrain.com/abc-123/login/token"
                timeout = 30

                [credentials]
                client_id = 42
                """) == [
                    "\(configFile):3: endpoint.timeout: found an integer, expected \(durationExpectation)",
                    "\(configFile):6: credentials.client_id: found an integer, expected a string",
                ])
    }

    @Test func tableGivenAsAValueIsTheWrongType() {
        #expect(
            problems(#"logging = "debug""# + "\n" + minimal)
                == ["\(configFile):1: logging: found a string, expected a table ([logging])"])
    }

    @Test(arguments: ["30", "5 m", "1h30", "-5s", "ten seconds", "", "99999999999999999999h"])
    func malformedDurationIsRefusedWithTheExpectedSyntax(duration: String) {
        #expect(
            problems(
                """
                [endpoint]
                token_url = "https://v1.api.us.janrain.com/abc-123/login/token"
                timeout = "\(duration)"

                [credentials]
                client_id = "client-1"
                """) == [#"\#(configFile):3: endpoint.timeout: found "\#(duration)", expected \#(durationExpectation)"#]
        )
    }

    @Test(arguments: [
        ("ftp://example.com/token", #"the scheme "ftp" is not supported; use https (or http for a loopback host)"#),
        ("example.com/token", #"an absolute URL such as "https://v1.api.us.janrain.com""#),
        (
            "https://user:pw@example.com/token",
            "the URL must not carry user information; put the client id in [credentials]"
        ),
        ("https://example.com:99999/token", #"the port "99999" is not a number from 1 to 65535"#),
        ("https://example.com/token#part", "the URL must not have a #fragment"),
    ])
    func malformedTokenURLIsRefusedWithTheReason(url: String, reason: String) {
        let messages = problems(
            """
            [endpoint]
            token_url = "\(url)"

            [credentials]
            client_id = "client-1"
            """)
        #expect(messages.count == 1)
        #expect(messages.first?.hasPrefix(#"\#(configFile):2: endpoint.token_url: found "\#(url)""#) == true)
        #expect(messages.first?.hasSuffix(reason) == true)
    }

    @Test func plainHTTPToANonLoopbackHostIsRefused() {
        let messages = problems(
            """
            [endpoint]
            token_url = "http://v1.api.us.janrain.com/abc-123/login/token"

            [credentials]
            client_id = "client-1"
            """)
        #expect(messages.count == 1)
        #expect(
            messages.first?.hasPrefix(
                #"\#(configFile):2: endpoint.token_url: found "http://v1.api.us.janrain.com/abc-123/login/token": plain http is refused for the non-loopback host "v1.api.us.janrain.com""#
            ) == true)
    }

    @Test(arguments: [
        "http://127.0.0.1:8080/token", "http://localhost/token", "http://[::1]:8080/token",
        "http://127.0.0.2/oauth/token",
    ])
    func plainHTTPToALoopbackHostIsAllowed(url: String) throws {
        let configuration = try parsed(
            """
            [endpoint]
            token_url = "\(url)"

            [credentials]
            client_id = "client-1"
            """)
        #expect(configuration.profiles[0].endpoint.tokenURL.scheme == "http")
        #expect(configuration.profiles[0].endpoint.tokenURL.description == url)
    }

    @Test(arguments: ["660x", "1777", "0", "06600", "rw-rw----"])
    func malformedSocketModeIsRefused(mode: String) {
        #expect(
            problems(
                minimal + """
                    [socket]
                    mode = "\(mode)"
                    """) == [
                    #"\#(configFile):8: socket.mode: found "\#(mode)", expected an octal permission string such as "0660""#
                ])
    }

    @Test func socketModeAsAnIntegerIsTheWrongType() {
        // `mode = 660` would be decimal 660 = 0o1224: an integer is refused rather than misread.
        #expect(
            problems(
                minimal + """
                    [socket]
                    mode = 660
                    """) == [
                    #"\#(configFile):8: socket.mode: found an integer, expected an octal permission string such as "0660""#
                ])
    }

    @Test(arguments: [("0660", 0o660 as UInt32), ("660", 0o660), ("0600", 0o600), ("0777", 0o777), ("0640", 0o640)])
    func socketModeIsReadAsOctal(mode: String, expected: UInt32) throws {
        let configuration = try parsed(
            minimal + """
                [socket]
                mode = "\(mode)"
                """)
        #expect(configuration.socket.mode == expected)
    }

    @Test func tokenURLTogetherWithBaseURLIsAConflict() {
        #expect(
            problems(
                """
                [endpoint]
                base_url = "https://v1.api.us.janrain.com"
                token_url = "https://v1.api.us.janrain.com/abc-123/login/token"

                [credentials]
                client_id = "client-1"
                """) == [
                    "\(configFile):3: endpoint.token_url: token_url is given together with base_url; give either token_url alone (any OAuth 2.0 token endpoint) or base_url with customer_id (Identity Cloud)"
                ])
    }

    @Test func tokenURLTogetherWithBaseURLAndCustomerIDNamesBoth() {
        let messages = problems(
            """
            [endpoint]
            token_url = "https://v1.api.us.janrain.com/abc-123/login/token"
            base_url = "https://v1.api.us.janrain.com"
            customer_id = "abc-123"

            [credentials]
            client_id = "client-1"
            """)
        #expect(messages.count == 1)
        #expect(
            messages.first?.hasPrefix(
                "\(configFile):2: endpoint.token_url: token_url is given together with base_url and customer_id;")
                == true)
    }

    @Test func baseURLWithoutCustomerIDIsMissingTheCustomerID() {
        #expect(
            problems(
                """
                [endpoint]
                base_url = "https://v1.api.us.janrain.com"

                [credentials]
                client_id = "client-1"
                """) == ["\(configFile): endpoint.customer_id: missing: customer_id, to go with base_url"])
    }

    @Test func customerIDWithoutBaseURLIsMissingTheBaseURL() {
        #expect(
            problems(
                """
                [endpoint]
                customer_id = "abc-123"

                [credentials]
                client_id = "client-1"
                """) == [
                    #"\#(configFile): endpoint.base_url: missing: base_url, such as "https://v1.api.us.janrain.com", to go with customer_id"#
                ])
    }

    @Test func endpointWithoutAnyURLIsMissingTheTokenURL() {
        #expect(
            problems(
                """
                [endpoint]
                scope = "*:webhooks/**"

                [credentials]
                client_id = "client-1"
                """) == [
                    "\(configFile): endpoint.token_url: missing: token_url, or base_url with customer_id: where to ask for tokens"
                ])
    }

    @Test func bothSecretSourcesAreAConflict() {
        #expect(
            problems(
                minimal + """
                    client_secret = "hunter2"
                    """) == [
                    "\(configFile):7: credentials.client_secret: client_secret and client_secret_file are both given; exactly one secret source must be used"
                ])
    }

    @Test func missingClientIDIsReported() {
        #expect(
            problems(
                """
                [endpoint]
                token_url = "https://v1.api.us.janrain.com/abc-123/login/token"

                [credentials]
                client_secret_file = "/etc/webhook-tokend/client-secret"
                """) == ["\(configFile): credentials.client_id: missing: client_id, the configuration client's id"])
    }

    @Test func missingEndpointTableIsReported() {
        #expect(
            problems(
                """
                [credentials]
                client_id = "client-1"
                """) == [
                    "\(configFile): endpoint: missing: the [endpoint] table with token_url, or base_url and customer_id"
                ])
    }

    @Test func severalProblemsAreReportedTogether() throws {
        let text = """
            [endpoint]
            token_url = "https://v1.api.us.janrain.com/abc-123/login/token"
            timout = "30s"

            [credentials]
            client_id = "client-1"

            [socket]
            mode = "0778"

            [renewal]
            retry_max = "a minute"
            """
        let error = try #require(throws: ConfigurationError.self) {
            try ConfigurationParser.parse(text, file: configFile)
        }
        #expect(error.issues.map(\.key) == ["endpoint.timout", "socket.mode", "renewal.retry_max"])
        #expect(error.issues.map(\.line) == [3, 9, 12])
        let lines = error.description.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.hasPrefix("\(configFile):") })
    }

    @Test func lineNumbersAreFoundInAFileWithCRLFLineEnds() {
        let text =
            minimal.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n") + """
                [socket]\r
                mode = "66"
                """
        #expect(
            problems(text) == [
                #"\#(configFile):8: socket.mode: found "66", expected an octal permission string such as "0660""#
            ])
    }

    @Test func secretFileMustBeAnAbsolutePath() {
        #expect(
            problems(
                """
                [endpoint]
                token_url = "https://v1.api.us.janrain.com/abc-123/login/token"

                [credentials]
                client_id = "client-1"
                client_secret_file = "client-secret"
                """) == [
                    #"\#(configFile):6: credentials.client_secret_file: found "client-secret", expected an absolute path"#
                ])
    }

    @Test func unknownLogLevelListsTheLevels() {
        #expect(
            problems(
                minimal + """
                    [logging]
                    level = "verbose"
                    """) == [
                    #"\#(configFile):8: logging.level: found "verbose", expected one of trace, debug, info, notice, warning, error, critical"#
                ])
    }

    @Test func renewalFractionsOutsideTheirRangesAreRefused() {
        #expect(
            problems(
                minimal + """
                    [renewal]
                    renew_at_remaining = 0.95
                    jitter = 0.6
                    """) == [
                    "\(configFile):8: renewal.renew_at_remaining: found 0.95, expected a fraction of the lifetime from 0.15 to 0.9, such as 0.25",
                    "\(configFile):9: renewal.jitter: found 0.6, expected a fraction of the lifetime from 0 to 0.5, such as 0.05",
                ])
    }

    // MARK: - Accepted files

    @Test func defaultsAreFilledIn() throws {
        let configuration = try parsed(minimal)
        #expect(configuration.profiles[0].endpoint.scope == "*:webhooks/**")
        #expect(configuration.profiles[0].endpoint.timeout == .seconds(15))
        #expect(configuration.profiles[0].endpoint.caFile == nil)
        #expect(configuration.socket.path == "/run/webhook-tokend/token.sock")
        #expect(configuration.socket.mode == 0o660)
        #expect(configuration.socket.group == nil)
        #expect(configuration.profiles[0].renewal.renewAtRemainingFraction == 0.25)
        #expect(configuration.profiles[0].renewal.jitterFraction == 0.05)
        #expect(configuration.profiles[0].renewal.minimumRemainingLife == .seconds(60))
        #expect(configuration.profiles[0].renewal.retryInitial == .seconds(1))
        #expect(configuration.profiles[0].renewal.retryMaximum == .seconds(60))
        #expect(configuration.profiles[0].renewal.retryMaximumPermanent == .seconds(300))
        #expect(configuration.profiles[0].renewal.retryAfterMaximum == .seconds(300))
        #expect(configuration.profiles[0].renewal.refreshMinimumInterval == .seconds(10))
        #expect(configuration.profiles[0].access.allowsEveryone)
        #expect(configuration.logging.level == "info")
        #expect(
            configuration.profiles[0].credentials
                == .init(clientID: "client-1", secretSource: .file(path: "/etc/webhook-tokend/client-secret")))
    }

    @Test func everyKeyIsRead() throws {
        let configuration = try parsed(
            """
            [endpoint]
            token_url = "https://login.example.com/oauth2/token?tenant=7"
            scope = "read write"
            ca_file = "/etc/ssl/private-ca.pem"
            timeout = "1m30s"

            [credentials]
            client_id = "client-1"
            client_secret_file = "/run/secrets/client"

            [socket]
            path = "/run/tokens/webhooks.sock"
            mode = "0640"
            group = 1234

            [renewal]
            renew_at_remaining = 0.5
            jitter = 0.1
            min_remaining_life = "2m"
            retry_initial = "500ms"
            retry_max = "30s"
            retry_max_permanent = "10m"
            retry_after_max = "2m"
            refresh_min_interval = "5s"

            [access]
            allowed_users = ["alice", 1001]
            allowed_groups = ["webhooks"]

            [logging]
            level = "debug"
            """)
        #expect(
            configuration.profiles[0].endpoint
                == Configuration.Endpoint(
                    tokenURL: try TokenURL(parsing: "https://login.example.com/oauth2/token?tenant=7"),
                    scope: "read write",
                    caFile: "/etc/ssl/private-ca.pem", timeout: .seconds(90)))
        #expect(
            configuration.socket == Configuration.Socket(path: "/run/tokens/webhooks.sock", mode: 0o640, group: "1234"))
        #expect(
            configuration.profiles[0].renewal
                == RenewalPolicy(
                    renewAtRemainingFraction: 0.5, jitterFraction: 0.1, minimumRemainingLife: .seconds(120),
                    retryInitial: .milliseconds(500), retryMaximum: .seconds(30), retryMaximumPermanent: .seconds(600),
                    retryAfterMaximum: .seconds(120), refreshMinimumInterval: .seconds(5)))
        #expect(
            configuration.profiles[0].access
                == AccessPolicy(allowedUsers: [.name("alice"), .id(1001)], allowedGroups: [.name("webhooks")]))
        #expect(configuration.logging.level == "debug")
    }

    @Test(arguments: [
        "https://v1.api.us.janrain.com", "https://v1.api.us.janrain.com/", "https://v1.api.us.janrain.com//",
    ])
    func baseURLAndCustomerIDMakeTheIdentityCloudTokenURL(baseURL: String) throws {
        let configuration = try parsed(
            """
            [endpoint]
            base_url = "\(baseURL)"
            customer_id = "abc-123"

            [credentials]
            client_id = "client-1"
            """)
        #expect(
            configuration.profiles[0].endpoint.tokenURL.description
                == "https://v1.api.us.janrain.com/abc-123/login/token")
    }

    @Test func customerIDWithAPathSeparatorIsRefused() {
        #expect(
            problems(
                """
                [endpoint]
                base_url = "https://v1.api.us.janrain.com"
                customer_id = "abc/../x"

                [credentials]
                client_id = "client-1"
                """) == [
                    #"\#(configFile):3: endpoint.customer_id: found "abc/../x", expected the Identity Cloud customer id: letters, digits and dashes"#
                ])
    }

    @Test func noSecretKeyMeansTheSystemdCredential() throws {
        let configuration = try parsed(
            """
            [endpoint]
            token_url = "https://v1.api.us.janrain.com/abc-123/login/token"

            [credentials]
            client_id = "client-1"
            """)
        #expect(configuration.profiles[0].credentials.secretSource == .systemdCredential(name: "client-secret"))
    }

    @Test func renderedTOMLNeverContainsAnInlineSecret() throws {
        let secret = "hunter2-S3cr3t+/="
        let configuration = try parsed(
            """
            [endpoint]
            token_url = "https://v1.api.us.janrain.com/abc-123/login/token"

            [credentials]
            client_id = "client-1"
            client_secret = "\(secret)"
            """)
        #expect(configuration.profiles[0].credentials.secretSource == .inline(ClientSecret(secret)))
        let rendered = configuration.renderedTOML()
        #expect(!rendered.contains(secret))
        #expect(!rendered.contains("hunter2"))
        #expect(rendered.contains(#"client_secret = "<redacted>""#))
        #expect(!String(describing: configuration).contains("hunter2"))
    }

    @Test func renderedTOMLReadsBackAsTheSameConfiguration() throws {
        let configuration = try parsed(
            """
            [endpoint]
            base_url = "https://v1.api.us.janrain.com/"
            customer_id = "abc-123"
            scope = "a \\"quoted\\" scope"
            timeout = "2.5s"

            [credentials]
            client_id = "client-1"
            client_secret_file = "/run/secrets/client"

            [socket]
            mode = "600"
            group = "webhooks"

            [renewal]
            jitter = 0.1
            retry_initial = "250ms"
            retry_max_permanent = "1h30m"

            [access]
            allowed_users = ["alice", 0]
            """)
        let rendered = configuration.renderedTOML()
        #expect(rendered.contains(#"mode = "0600""#))
        #expect(try parsed(rendered) == configuration)
    }

    @Test func renderedTOMLNamesTheSystemdCredential() throws {
        let rendered = try parsed(
            """
            [endpoint]
            token_url = "https://v1.api.us.janrain.com/abc-123/login/token"

            [credentials]
            client_id = "client-1"
            """
        ).renderedTOML()
        #expect(rendered.contains(#"# client secret: systemd credential "client-secret" in $CREDENTIALS_DIRECTORY"#))
        #expect(!rendered.contains("client_secret"))
    }
}
