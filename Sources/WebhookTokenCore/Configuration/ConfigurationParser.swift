import TOMLKit
import WebhookTokenProtocol

/// Turns the text of `config.toml` into a validated ``Configuration``.
///
/// Pure: it reads no files and no environment. Whatever is not exactly right — an unknown key, a
/// wrong type, a malformed duration, URL or mode — is an error naming the key and (where the
/// line can be told) the line; no typo ever falls back to a default silently.
public struct ConfigurationParser {
    public let file: String
    private let lines: LineLocator
    private var issues: [ConfigurationError.Issue] = []

    private init(file: String, text: String) {
        self.file = file
        self.lines = LineLocator(text: text)
    }

    /// The tables and keys of the configuration file, from the one table of keys.
    public static let schema: [String: [String]] = Dictionary(
        uniqueKeysWithValues: ConfigurationKey.Table.allCases.map { ($0.rawValue, ConfigurationKey.names(of: $0)) })

    /// `[profiles.NAME.*]`: the named profiles' tables.
    static let profilesTable = "profiles"

    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> Configuration {
        var parser = ConfigurationParser(file: file, text: text)
        // Some inputs must not reach the TOML library at all: see ``TOMLPreflight``.
        if let (line, message) = TOMLPreflight.problem(in: text) {
            throw ConfigurationError(.init(file: file, line: line, problem: .syntax(message)))
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                .init(file: file, line: error.source.begin.line, problem: .syntax(error.description)))
        } catch {
            throw ConfigurationError(.init(file: file, problem: .syntax(String(describing: error))))
        }
        let configuration = parser.build(root)
        if let configuration, parser.issues.isEmpty {
            return configuration
        }
        throw ConfigurationError(issues: parser.issues)
    }

    // MARK: - Building

    private mutating func build(_ root: TOMLTable) -> Configuration? {
        let rootKeys = Array(Self.schema.keys) + [Self.profilesTable]
        for key in root.keys.sorted() where !rootKeys.contains(key) {
            report(
                key, line: lines.lineOfTable(key) ?? lines.lineOfKey(key, inTable: nil),
                .unknownKey(
                    suggestion: Self.closest(to: key, in: rootKeys),
                    known: rootKeys.sorted().map { "[\($0)]" }))
        }
        let endpointTable = table(root, .endpoint)
        let credentialsTable = table(root, .credentials)
        let proxyTable = table(root, .proxy)
        let socket = buildSocket(table(root, .socket))
        let baseRenewal = buildRenewal(table(root, .renewal), base: RenewalPolicy())
        let baseAccess = buildAccess(table(root, .access))
        let logging = buildLogging(table(root, .logging))
        let named = buildProfiles(root, renewal: baseRenewal, access: baseAccess)

        var profiles: [Configuration.Profile] = []
        var complete = true
        // The single-token form: top-level [endpoint] and [credentials] are the profile "default".
        if endpointTable != nil || credentialsTable != nil || named == nil {
            let name = Configuration.Profile.defaultName
            let endpoint = buildEndpoint(endpointTable, tableName: "endpoint")
            let credentials = buildCredentials(credentialsTable, tableName: "credentials", profile: name)
            let proxy = endpoint.flatMap { buildProxy(proxyTable, endpoint: $0) }
            if let endpoint, let credentials {
                profiles.append(
                    .init(
                        name: name, endpoint: endpoint, credentials: credentials, renewal: baseRenewal,
                        access: baseAccess,
                        proxy: proxy))
            } else {
                complete = false
            }
        }
        if let named {
            if named.profiles.contains(where: { $0.name == Configuration.Profile.defaultName }), !profiles.isEmpty {
                report(
                    "profiles.default", line: lines.lineOfTable("profiles.default"),
                    .conflict(
                        "the profile \"default\" is also given by the top-level [endpoint] and [credentials]; use one or the other"
                    ))
            }
            if proxyTable != nil, profiles.isEmpty {
                report(
                    "proxy", line: lines.lineOfTable("proxy"),
                    .conflict(
                        "the top-level [proxy] is the profile \"default\"'s, and there is none; use [profiles.NAME.proxy]"
                    ))
            }
            profiles += named.profiles
            complete = complete && named.complete
        }
        checkSocketPaths(profiles, socket: socket)
        let sinks = elements(root, .sink).compactMap { buildSink($0, profiles: profiles) }
        let hooks = elements(root, .hook).compactMap { buildHook($0, profiles: profiles) }
        var seenPaths: Set<String> = []
        for sink in sinks where !seenPaths.insert(sink.path).inserted {
            report("sink", line: nil, .conflict("two sinks write \(sink.path); give each its own file"))
        }
        guard complete, !profiles.isEmpty else { return nil }
        return Configuration(profiles: profiles, socket: socket, logging: logging, sinks: sinks, hooks: hooks)
    }

    /// The elements of an array of tables (`[[sink]]`), named `sink[1]`, `sink[2]`, … in messages.
    private mutating func elements(_ root: TOMLTable, _ kind: ConfigurationKey.Table) -> [Section] {
        guard let value = root[kind.rawValue] else { return [] }
        guard let array = value.array else {
            report(
                kind.rawValue, line: lines.lineOfTable(kind.rawValue) ?? lines.lineOfKey(kind.rawValue, inTable: nil),
                .wrongType(found: value.type.description, expected: "an array of tables ([[\(kind.rawValue)]])"))
            return []
        }
        let known = ConfigurationKey.names(of: kind)
        var sections: [Section] = []
        for (index, element) in array.enumerated() {
            let name = "\(kind.rawValue)[\(index + 1)]"
            guard let table = element.table else {
                report(
                    name, line: nil,
                    .wrongType(found: element.type.description, expected: "a table ([[\(kind.rawValue)]])"))
                continue
            }
            for key in table.keys.sorted() where !known.contains(key) {
                report(
                    "\(name).\(key)", line: lines.lineOfKey(key, inTable: name),
                    .unknownKey(suggestion: Self.closest(to: key, in: known), known: known))
            }
            sections.append(Section(name: name, table: table, lines: lines))
        }
        return sections
    }

    /// `profile = "NAME"` of a sink or hook: an existing profile, or — omitted — the only one.
    private mutating func profileReference(_ section: Section, profiles: [Configuration.Profile]) -> String? {
        let names = profiles.map(\.name)
        guard let name = string(section, "profile") else {
            if section.table["profile"] != nil { return nil }
            if names.count == 1 { return names[0] }
            if !names.isEmpty {
                report(
                    section.qualified("profile"), line: nil,
                    .missing("profile, one of \(names.joined(separator: ", ")): there are several"))
            }
            return nil
        }
        guard names.isEmpty || names.contains(name) else {
            invalid(
                section, "profile", found: "\"\(name)\"",
                expected: "one of the profiles: \(names.joined(separator: ", "))")
            return nil
        }
        return name
    }

    private mutating func buildSink(_ section: Section, profiles: [Configuration.Profile]) -> Configuration.Sink? {
        let profile = profileReference(section, profiles: profiles)
        let path = string(section, "path")
        if path == nil && section.table["path"] == nil {
            report(section.qualified("path"), line: nil, .missing("path, the file to write the token to"))
        }
        if let path, !path.hasPrefix("/") || path.hasSuffix("/") {
            invalid(section, "path", found: "\"\(path)\"", expected: "an absolute path to a file")
        }
        var format = Configuration.Sink.Format.raw
        if let text = string(section, "format") {
            if let known = Configuration.Sink.Format(rawValue: text) {
                format = known
            } else {
                invalid(
                    section, "format", found: "\"\(text)\"",
                    expected: "one of \(Configuration.Sink.Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        let mode = mode(section, "mode") ?? Configuration.Sink.defaultMode
        let group = group(section, "group")
        let persistent = bool(section, "allow_persistent_storage") ?? false
        guard let profile, let path, path.hasPrefix("/"), !path.hasSuffix("/") else { return nil }
        return .init(
            profile: profile, path: path, format: format, mode: mode, group: group, allowPersistentStorage: persistent)
    }

    private mutating func buildHook(_ section: Section, profiles: [Configuration.Profile]) -> Configuration.Hook? {
        let profile = profileReference(section, profiles: profiles)
        var command: [String]?
        if let value = section.table["command"] {
            if let array = value.array, !array.isEmpty, array.allSatisfy({ $0.string != nil }) {
                command = array.compactMap(\.string)
                if let program = command?.first, !program.hasPrefix("/") {
                    invalid(
                        section, "command", found: "\"\(program)\"",
                        expected: "an absolute path to the program first (there is no shell and no PATH search)")
                    command = nil
                }
            } else {
                wrongType(
                    section, "command", value,
                    expected: "a non-empty array of strings such as [\"/usr/local/bin/reload-app\", \"--graceful\"]")
            }
        } else {
            report(section.qualified("command"), line: nil, .missing("command, the program and its arguments"))
        }
        var timeout = Configuration.Hook.defaultTimeout
        if let value = duration(section, "timeout") {
            if value > .zero {
                timeout = value
            } else {
                invalid(
                    section, "timeout", found: "\"\(DurationSyntax.format(value))\"",
                    expected: "a duration greater than zero")
            }
        }
        var input = Configuration.Hook.Input.none
        if let text = string(section, "stdin") {
            if let known = Configuration.Hook.Input(rawValue: text) {
                input = known
            } else {
                invalid(section, "stdin", found: "\"\(text)\"", expected: "\"none\" or \"token\"")
            }
        }
        guard let profile, let command else { return nil }
        return .init(profile: profile, command: command, timeout: timeout, stdin: input)
    }

    /// `[profiles.NAME.endpoint]`, `.credentials`, `.renewal`, `.access`: a profile's `[renewal]`
    /// overrides the top-level one key by key; its `[access]` replaces the top-level one.
    private mutating func buildProfiles(
        _ root: TOMLTable, renewal: RenewalPolicy, access: AccessPolicy
    ) -> (profiles: [Configuration.Profile], complete: Bool)? {
        guard let value = root[Self.profilesTable] else { return nil }
        guard let profilesTable = value.table else {
            report(
                Self.profilesTable, line: lines.lineOfKey(Self.profilesTable, inTable: nil),
                .wrongType(found: value.type.description, expected: "tables such as [profiles.webhooks.endpoint]"))
            return ([], false)
        }
        var profiles: [Configuration.Profile] = []
        var complete = true
        let perProfile = ConfigurationKey.Table.allCases.filter(\.isPerProfile).map(\.rawValue)
        for name in profilesTable.keys.sorted() {
            let qualified = "\(Self.profilesTable).\(name)"
            guard Configuration.Profile.isValidName(name) else {
                report(
                    qualified, line: lines.lineOfTable(qualified),
                    .invalidValue(
                        found: "the profile name \"\(name)\"",
                        expected: "lower-case letters, digits and dashes, starting with a letter or digit, at most 63"))
                complete = false
                continue
            }
            guard let profile = profilesTable[name]?.table else {
                report(
                    qualified, line: lines.lineOfKey(name, inTable: Self.profilesTable),
                    .wrongType(
                        found: profilesTable[name]?.type.description ?? "?",
                        expected: "a table of tables ([\(qualified).endpoint], ...)"))
                complete = false
                continue
            }
            for key in profile.keys.sorted() where !perProfile.contains(key) {
                report(
                    "\(qualified).\(key)",
                    line: lines.lineOfTable("\(qualified).\(key)") ?? lines.lineOfKey(key, inTable: qualified),
                    .unknownKey(
                        suggestion: Self.closest(to: key, in: perProfile),
                        known: perProfile.map { "[\(qualified).\($0)]" }))
            }
            let endpoint = buildEndpoint(
                table(profile, .endpoint, prefix: qualified), tableName: "\(qualified).endpoint")
            let credentials = buildCredentials(
                table(profile, .credentials, prefix: qualified), tableName: "\(qualified).credentials", profile: name)
            let profileRenewal = buildRenewal(table(profile, .renewal, prefix: qualified), base: renewal)
            let accessSection = table(profile, .access, prefix: qualified)
            let profileAccess = accessSection == nil ? access : buildAccess(accessSection)
            let proxySection = table(profile, .proxy, prefix: qualified)
            guard let endpoint, let credentials else {
                complete = false
                continue
            }
            profiles.append(
                .init(
                    name: name, endpoint: endpoint, credentials: credentials, renewal: profileRenewal,
                    access: profileAccess,
                    proxy: buildProxy(proxySection, endpoint: endpoint)))
        }
        // "default" first, then by name.
        profiles.sort {
            ($0.name == Configuration.Profile.defaultName ? "" : $0.name)
                < ($1.name == Configuration.Profile.defaultName ? "" : $1.name)
        }
        return (profiles, complete)
    }

    private mutating func buildEndpoint(_ table: Section?, tableName: String) -> Configuration.Endpoint? {
        guard let table else {
            report(
                tableName, line: nil, .missing("the [\(tableName)] table with token_url, or base_url and customer_id"))
            return nil
        }
        let baseURL = string(table, "base_url")
        let customerID = string(table, "customer_id")
        let tokenURLString = string(table, "token_url")
        let scope = string(table, "scope") ?? Configuration.Endpoint.defaultScope
        let caFile = string(table, "ca_file")
        let timeout = duration(table, "timeout") ?? Configuration.Endpoint.defaultTimeout

        if scope.isEmpty || scope.contains(where: { $0.isNewline }) {
            invalid(
                table, "scope", found: "\"\(scope)\"",
                expected: "a non-empty, single-line scope such as \"*:webhooks/**\"")
        }
        if let caFile, !caFile.hasPrefix("/") {
            invalid(table, "ca_file", found: "\"\(caFile)\"", expected: "an absolute path to a PEM file")
        }
        if timeout <= .zero {
            invalid(
                table, "timeout", found: "\"\(DurationSyntax.format(timeout))\"",
                expected: "a duration greater than zero")
        }

        var tokenURL: TokenURL?
        switch (tokenURLString, baseURL, customerID) {
        case (let url?, nil, nil):
            do {
                tokenURL = try TokenURL(parsing: url)
            } catch {
                report(
                    table.qualified("token_url"), line: table.line(of: "token_url"),
                    .refused(found: "\"\(url)\"", reason: error.description))
            }
        case (_?, _, _):
            let given = ["base_url", "customer_id"].filter { table.table[$0] != nil }
            report(
                table.qualified("token_url"), line: table.line(of: "token_url"),
                .conflict(
                    "token_url is given together with \(given.joined(separator: " and ")); give either token_url alone (any OAuth 2.0 token endpoint) or base_url with customer_id (Identity Cloud)"
                ))
        case (nil, let base?, let customer?):
            if customer.isEmpty
                || !customer.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            {
                invalid(
                    table, "customer_id", found: "\"\(customer)\"",
                    expected: "the Identity Cloud customer id: letters, digits and dashes")
            } else {
                do {
                    tokenURL = try TokenURL(baseURL: base, customerID: customer)
                } catch {
                    report(
                        table.qualified("base_url"), line: table.line(of: "base_url"),
                        .refused(found: "\"\(base)\"", reason: error.description))
                }
            }
        case (nil, nil, _?):
            report(
                table.qualified("base_url"), line: nil,
                .missing("base_url, such as \"https://v1.api.us.janrain.com\", to go with customer_id"))
        case (nil, _?, nil):
            report(table.qualified("customer_id"), line: nil, .missing("customer_id, to go with base_url"))
        case (nil, nil, nil):
            if table.table["token_url"] == nil && table.table["base_url"] == nil {
                report(
                    table.qualified("token_url"), line: nil,
                    .missing("token_url, or base_url with customer_id: where to ask for tokens"))
            }
        }
        guard let tokenURL else { return nil }
        return .init(tokenURL: tokenURL, scope: scope, caFile: caFile, timeout: timeout)
    }

    private mutating func buildCredentials(_ table: Section?, tableName: String, profile: String) -> Configuration
        .Credentials?
    {
        guard let table else {
            report(tableName, line: nil, .missing("the [\(tableName)] table with client_id"))
            return nil
        }
        let clientID = string(table, "client_id")
        let secretFile = string(table, "client_secret_file")
        let inlineSecret = string(table, "client_secret")
        if clientID == nil && table.table["client_id"] == nil {
            report(table.qualified("client_id"), line: nil, .missing("client_id, the configuration client's id"))
        }
        if let clientID, clientID.isEmpty || clientID.contains(where: { $0.isNewline || $0 == "\0" }) {
            invalid(
                table, "client_id", found: clientID.isEmpty ? "an empty string" : "a line break",
                expected: "the configuration client's id")
        }
        if let secretFile, !secretFile.hasPrefix("/") {
            invalid(table, "client_secret_file", found: "\"\(secretFile)\"", expected: "an absolute path")
        }
        if let inlineSecret, inlineSecret.isEmpty {
            invalid(table, "client_secret", found: "an empty string", expected: "the client secret")
        }
        let source: SecretSource
        switch (secretFile, inlineSecret) {
        case (_?, _?):
            report(
                table.qualified("client_secret"), line: table.line(of: "client_secret"),
                .conflict("client_secret and client_secret_file are both given; exactly one secret source must be used")
            )
            return nil
        case (let path?, nil):
            source = .file(path: path)
        case (nil, let secret?):
            source = .inline(ClientSecret(secret))
        case (nil, nil):
            source = .systemdCredential(name: Configuration.Profile.credentialName(profile: profile))
        }
        guard let clientID else { return nil }
        return .init(clientID: clientID, secretSource: source)
    }

    private mutating func buildSocket(_ table: Section?) -> Configuration.Socket {
        var socket = Configuration.Socket()
        guard let table else { return socket }
        if let path = string(table, "path") {
            if !path.hasPrefix("/") {
                invalid(table, "path", found: "\"\(path)\"", expected: "an absolute path")
            } else if path.utf8.count > SocketProtocol.maximumSocketPathBytes {
                invalid(
                    table, "path", found: "a path of \(path.utf8.count) bytes",
                    expected:
                        "at most \(SocketProtocol.maximumSocketPathBytes) bytes (the limit of a Unix socket address)")
            } else {
                socket.path = path
            }
        }
        if let mode = mode(table, "mode") { socket.mode = mode }
        if let value = table.table["max_connections"] {
            if let count = value.int, (1...100_000).contains(count) {
                socket.maximumConnections = count
            } else if let count = value.int {
                invalid(
                    table, "max_connections", found: "\(count)", expected: "a number of connections from 1 to 100000")
            } else {
                wrongType(table, "max_connections", value, expected: "a number of connections such as 1024")
            }
        }
        if let value = table.table["max_connections_per_user"] {
            if let count = value.int, count >= 1, count <= socket.maximumConnections {
                socket.maximumConnectionsPerUserSetting = count
            } else if let count = value.int {
                invalid(
                    table, "max_connections_per_user", found: "\(count)",
                    expected: "a number of connections from 1 to max_connections (\(socket.maximumConnections))")
            } else {
                wrongType(table, "max_connections_per_user", value, expected: "a number of connections such as 256")
            }
        }
        if let timeout = duration(table, "header_timeout") {
            if timeout > .zero {
                socket.headerTimeout = timeout
            } else {
                invalid(
                    table, "header_timeout", found: "\"\(DurationSyntax.format(timeout))\"",
                    expected: "a duration greater than zero")
            }
        }
        if let timeout = duration(table, "idle_timeout") {
            if timeout > .zero {
                socket.idleTimeout = timeout
            } else {
                invalid(
                    table, "idle_timeout", found: "\"\(DurationSyntax.format(timeout))\"",
                    expected: "a duration greater than zero")
            }
        }
        if let group = group(table, "group") { socket.group = group }
        return socket
    }

    /// `[proxy]`: `socket` is required; the upstream defaults to the origin of the token URL.
    private mutating func buildProxy(_ table: Section?, endpoint: Configuration.Endpoint) -> Configuration.Proxy? {
        guard let table else { return nil }
        let socketPath = string(table, "socket")
        var upstream = Configuration.Proxy.origin(of: endpoint.tokenURL)
        if let text = string(table, "upstream") {
            do {
                let url = try TokenURL(parsing: text)
                if url.pathAndQuery == "/" {
                    upstream = url
                } else {
                    invalid(
                        table, "upstream", found: "\"\(text)\"",
                        expected: "an origin without a path, such as \"https://v1.api.us.janrain.com\"")
                }
            } catch {
                report(
                    table.qualified("upstream"), line: table.line(of: "upstream"),
                    .refused(found: "\"\(text)\"", reason: error.description))
            }
        }
        var prefixes: [String] = []
        if let value = table.table["allowed_path_prefixes"] {
            if let array = value.array {
                for element in array {
                    if let prefix = element.string, prefix.hasPrefix("/"),
                        !prefix.contains(where: { $0 == "?" || $0 == "#" || $0.isWhitespace })
                    {
                        prefixes.append(prefix)
                    } else {
                        invalid(
                            table, "allowed_path_prefixes", found: element.string.map { "\"\($0)\"" } ?? "\(element)",
                            expected:
                                "paths starting with \"/\", such as \"/01000000-0000-3000-9000-000000000000/webhooks/\""
                        )
                    }
                }
            } else {
                wrongType(table, "allowed_path_prefixes", value, expected: "an array of path prefixes")
            }
        }
        var maximumBody = Configuration.Proxy.defaultMaximumRequestBody
        if let value = table.table["max_request_body"] {
            let text = value.string ?? value.int.map(String.init)
            if let text, let size = ByteSizeSyntax.parse(text), size <= 1 << 30 {
                maximumBody = size
            } else if value.string != nil || value.int != nil {
                invalid(
                    table, "max_request_body", found: "\"\(text ?? "")\"",
                    expected: ByteSizeSyntax.expected + ", at most 1GiB")
            } else {
                wrongType(table, "max_request_body", value, expected: ByteSizeSyntax.expected)
            }
        }
        var timeout = Configuration.Proxy.defaultTimeout
        if let value = duration(table, "timeout") {
            if value > .zero {
                timeout = value
            } else {
                invalid(
                    table, "timeout", found: "\"\(DurationSyntax.format(value))\"",
                    expected: "a duration greater than zero")
            }
        }
        guard let socketPath else {
            if table.table["socket"] == nil {
                report(table.qualified("socket"), line: nil, .missing("socket, the path of the proxy's socket"))
            }
            return nil
        }
        guard socketPath.hasPrefix("/"), socketPath.utf8.count <= SocketProtocol.maximumSocketPathBytes else {
            invalid(
                table, "socket", found: "\"\(socketPath)\"",
                expected: "an absolute path of at most \(SocketProtocol.maximumSocketPathBytes) bytes")
            return nil
        }
        return .init(
            socketPath: socketPath, upstream: upstream, allowedPathPrefixes: prefixes, maximumRequestBody: maximumBody,
            timeout: timeout)
    }

    /// Every socket the daemon creates must have a path of its own.
    private mutating func checkSocketPaths(_ profiles: [Configuration.Profile], socket: Configuration.Socket) {
        var seen = [socket.path: "[socket] path"]
        for profile in profiles {
            guard let proxy = profile.proxy else { continue }
            let key =
                profile.name == Configuration.Profile.defaultName
                ? "proxy.socket" : "profiles.\(profile.name).proxy.socket"
            if let other = seen[proxy.socketPath] {
                report(
                    key, line: nil,
                    .conflict("\(proxy.socketPath) is also \(other); every socket needs a path of its own"))
            }
            seen[proxy.socketPath] = key
        }
    }

    private mutating func buildRenewal(_ table: Section?, base: RenewalPolicy) -> RenewalPolicy {
        var policy = base
        guard let table else { return policy }
        if let fraction = fraction(table, "renew_at_remaining") {
            // Below 0.15 the renewal would come after a token stops being served (at a tenth of its
            // lifetime left, for short lifetimes), leaving consumers without a token every cycle.
            if fraction >= 0.15 && fraction <= 0.9 {
                policy.renewAtRemainingFraction = fraction
            } else {
                invalid(
                    table, "renew_at_remaining", found: "\(fraction)",
                    expected: "a fraction of the lifetime from 0.15 to 0.9, such as 0.25")
            }
        }
        if let jitter = fraction(table, "jitter") {
            if jitter >= 0 && jitter <= 0.5 {
                policy.jitterFraction = jitter
            } else {
                invalid(
                    table, "jitter", found: "\(jitter)",
                    expected: "a fraction of the lifetime from 0 to 0.5, such as 0.05")
            }
        }
        if policy.renewAtRemainingFraction + policy.jitterFraction >= 1 {
            invalid(
                table, "jitter",
                found: "\(policy.jitterFraction) with renew_at_remaining \(policy.renewAtRemainingFraction)",
                expected: "the two to add up to less than 1")
        }
        func positive(_ key: String, _ apply: (inout RenewalPolicy, Duration) -> Void) {
            if let value = duration(table, key) {
                if value > .zero {
                    apply(&policy, value)
                } else {
                    invalid(
                        table, key, found: "\"\(DurationSyntax.format(value))\"",
                        expected: "a duration greater than zero")
                }
            }
        }
        if let value = duration(table, "min_remaining_life") { policy.minimumRemainingLife = value }
        positive("retry_initial") { $0.retryInitial = $1 }
        positive("retry_max") { $0.retryMaximum = $1 }
        positive("retry_max_permanent") { $0.retryMaximumPermanent = $1 }
        positive("retry_after_max") { $0.retryAfterMaximum = $1 }
        if let value = duration(table, "refresh_min_interval") { policy.refreshMinimumInterval = value }
        if let value = duration(table, "refresh_min_interval_per_user") { policy.refreshMinimumIntervalPerUser = value }
        if policy.retryMaximum < policy.retryInitial {
            invalid(
                table, "retry_max", found: "\"\(DurationSyntax.format(policy.retryMaximum))\"",
                expected: "at least retry_initial (\(DurationSyntax.format(policy.retryInitial)))")
        }
        if policy.retryMaximumPermanent < policy.retryInitial {
            invalid(
                table, "retry_max_permanent", found: "\"\(DurationSyntax.format(policy.retryMaximumPermanent))\"",
                expected: "at least retry_initial (\(DurationSyntax.format(policy.retryInitial)))")
        }
        return policy
    }

    private mutating func buildAccess(_ table: Section?) -> AccessPolicy {
        var access = AccessPolicy()
        guard let table else { return access }
        access.allowedUsers = principals(table, "allowed_users", kind: "user")
        access.allowedGroups = principals(table, "allowed_groups", kind: "group")
        return access
    }

    private mutating func buildLogging(_ table: Section?) -> Configuration.Logging {
        var logging = Configuration.Logging()
        guard let table else { return logging }
        if let level = string(table, "level") {
            if Configuration.Logging.levels.contains(level) {
                logging.level = level
            } else {
                invalid(
                    table, "level", found: "\"\(level)\"",
                    expected: "one of \(Configuration.Logging.levels.joined(separator: ", "))")
            }
        }
        return logging
    }

    // MARK: - Typed access with reporting

    /// A table of the schema, with the knowledge of where its keys are in the text.
    private struct Section {
        let name: String
        let table: TOMLTable
        let lines: LineLocator

        func qualified(_ key: String) -> String { "\(name).\(key)" }
        func line(of key: String) -> Int? { lines.lineOfKey(key, inTable: name) }
    }

    /// The table `kind` of `parent` (the root, or a profile's table `prefix`), with its unknown
    /// keys reported.
    private mutating func table(_ parent: TOMLTable, _ kind: ConfigurationKey.Table, prefix: String? = nil) -> Section?
    {
        let key = kind.rawValue
        let name = prefix.map { "\($0).\(key)" } ?? key
        guard let value = parent[key] else { return nil }
        guard let table = value.table else {
            report(
                name, line: lines.lineOfKey(key, inTable: prefix),
                .wrongType(found: value.type.description, expected: "a table ([\(name)])"))
            return nil
        }
        let known = ConfigurationKey.names(of: kind)
        for key in table.keys.sorted() where !known.contains(key) {
            report(
                "\(name).\(key)", line: lines.lineOfKey(key, inTable: name),
                .unknownKey(suggestion: Self.closest(to: key, in: known), known: known))
        }
        return Section(name: name, table: table, lines: lines)
    }

    /// An octal permission string such as `"0660"`.
    private mutating func mode(_ section: Section, _ key: String) -> UInt32? {
        guard let value = section.table[key] else { return nil }
        if let text = value.string, (3...4).contains(text.count), let mode = UInt32(text, radix: 8), mode <= 0o777 {
            return mode
        } else if value.type == .string {
            invalid(
                section, key, found: "\"\(value.string ?? "")\"",
                expected: "an octal permission string such as \"0660\"")
        } else {
            wrongType(section, key, value, expected: "an octal permission string such as \"0660\"")
        }
        return nil
    }

    /// A group name, or a numeric id (as its decimal text).
    private mutating func group(_ section: Section, _ key: String) -> String? {
        guard let value = section.table[key] else { return nil }
        if let name = value.string, !name.isEmpty { return name }
        if let id = value.int, id >= 0, id < Int(UInt32.max) { return String(id) }
        wrongType(section, key, value, expected: "a group name or numeric id")
        return nil
    }

    private mutating func bool(_ section: Section, _ key: String) -> Bool? {
        guard let value = section.table[key] else { return nil }
        guard let bool = value.bool else {
            wrongType(section, key, value, expected: "true or false")
            return nil
        }
        return bool
    }

    private mutating func string(_ section: Section, _ key: String) -> String? {
        guard let value = section.table[key] else { return nil }
        guard let string = value.string else {
            wrongType(section, key, value, expected: "a string")
            return nil
        }
        return string
    }

    private mutating func duration(_ section: Section, _ key: String) -> Duration? {
        guard let value = section.table[key] else { return nil }
        guard let text = value.string else {
            wrongType(section, key, value, expected: DurationSyntax.expected)
            return nil
        }
        guard let duration = DurationSyntax.parse(text) else {
            invalid(section, key, found: "\"\(text)\"", expected: DurationSyntax.expected)
            return nil
        }
        return duration
    }

    private mutating func fraction(_ section: Section, _ key: String) -> Double? {
        guard let value = section.table[key] else { return nil }
        if let double = value.double { return double }
        if let int = value.int { return Double(int) }
        wrongType(section, key, value, expected: "a number such as 0.25")
        return nil
    }

    private mutating func principals(_ section: Section, _ key: String, kind: String) -> [AccessPolicy.Principal] {
        guard let value = section.table[key] else { return [] }
        guard let array = value.array else {
            wrongType(section, key, value, expected: "an array of \(kind) names or numeric ids")
            return []
        }
        var result: [AccessPolicy.Principal] = []
        for element in array {
            if let name = element.string, !name.isEmpty, !name.contains(where: { $0.isWhitespace || $0 == ":" }) {
                result.append(.name(name))
            } else if let id = element.int, id >= 0, id < Int(UInt32.max) {
                result.append(.id(UInt32(id)))
            } else {
                invalid(
                    section, key, found: element.string.map { "\"\($0)\"" } ?? "\(element)",
                    expected: "\(kind) names or numeric ids from 0 to 4294967294")
            }
        }
        return result
    }

    private mutating func wrongType(
        _ section: Section, _ key: String, _ value: any TOMLValueConvertible, expected: String
    ) {
        report(
            section.qualified(key), line: section.line(of: key),
            .wrongType(found: value.type.description, expected: expected))
    }

    private mutating func invalid(_ section: Section, _ key: String, found: String, expected: String) {
        report(section.qualified(key), line: section.line(of: key), .invalidValue(found: found, expected: expected))
    }

    private mutating func report(_ key: String, line: Int?, _ problem: ConfigurationError.Problem) {
        issues.append(.init(file: file, line: line, key: key, problem: problem))
    }

    /// The known name within edit distance 2 of a mistyped one, for "did you mean".
    static func closest(to key: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key, $0)) }.filter { $0.1 <= max(2, key.count / 4) }
        return scored.min(by: { $0.1 < $1.1 })?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// Finds the line of a key in the TOML text, for error messages.
///
/// The TOML library reports positions for syntax errors only; for a semantic error (unknown key,
/// wrong type) this scans the text for `key =` under the right `[table]` header. It understands
/// the plain layout configuration files use; where it cannot tell, the message simply has no line.
struct LineLocator: Sendable {
    private let lines: [Substring]

    init(text: String) {
        // `"\r\n"` is a single `Character`, unequal to `"\n"`: without it, a file with CRLF line
        // ends (TOML allows them) would be one long line, and every line number lost or wrong.
        self.lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    func lineOfTable(_ table: String) -> Int? {
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters()
            if trimmed == "[\(table)]" || trimmed.hasPrefix("[\(table)]") { return index + 1 }
        }
        return nil
    }

    func lineOfKey(_ key: String, inTable table: String?) -> Int? {
        var current: String?
        var arrayCounts: [String: Int] = [:]
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters()
            if trimmed.hasPrefix("[[") {
                // `[[sink]]`: the n-th element is the table `sink[n]`.
                let inner = trimmed.dropFirst(2)
                let name = String(inner[..<(inner.firstIndex(of: "]") ?? inner.endIndex)]).trimmingCharacters()
                arrayCounts[name, default: 0] += 1
                current = "\(name)[\(arrayCounts[name]!)]"
                continue
            }
            if trimmed.hasPrefix("[") {
                let end = trimmed.firstIndex(of: "]") ?? trimmed.endIndex
                current = String(trimmed[trimmed.index(after: trimmed.startIndex)..<end]).trimmingCharacters()
                continue
            }
            let qualifiedHere = current == table
            let dotted = table.map { "\($0).\(key)" }
            for candidate in [qualifiedHere ? key : nil, current == nil ? dotted : nil].compactMap({ $0 }) {
                if trimmed.hasPrefix(candidate) {
                    let after = trimmed.dropFirst(candidate.count).drop(while: { $0 == " " || $0 == "\t" })
                    if after.hasPrefix("=") { return index + 1 }
                }
            }
        }
        return nil
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return String(slice)
    }
}
