import PropertyBased
import Testing
import WebhookTokenCore

// Property-based fuzzing of the configuration parser (issue 4 §6).
//
// Every property runs a bounded number of random inputs (see `count:`), so CI stays fast; each run
// draws fresh inputs. A failure prints the input and a seed: to reproduce it, add the trait it
// names to the test, e.g. `@Test(.fixedSeed("aKPPWDEafU0CGMDYHef/ETcbYUyjWQvRVP1DTNy6qJk="))`,
// which replays exactly that input (and always records an issue, so it must not be committed).
// Shrinking is on by default with Swift 6.2; the generators built with `Generator(run:)` below do
// not shrink, and print their input whole.

private let fuzzFile = "/etc/webhook-tokend/fuzz.toml"

// MARK: - Random helpers shared by the fuzz tests

enum Fuzz {
    static func pick<T, R: RandomNumberGenerator>(_ values: [T], _ rng: inout R) -> T {
        values[Int.random(in: 0..<values.count, using: &rng)]
    }

    static func chance<R: RandomNumberGenerator>(_ probability: Double, _ rng: inout R) -> Bool {
        Double.random(in: 0..<1, using: &rng) < probability
    }

    /// A random Unicode scalar: mostly ASCII (control characters included), sometimes anything.
    static func scalar<R: RandomNumberGenerator>(_ rng: inout R) -> Unicode.Scalar {
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<6: return Unicode.Scalar(UInt8.random(in: 0...0x7F, using: &rng))
        case 6: return Unicode.Scalar(UInt8.random(in: 0x80...0xFF, using: &rng))
        case 7:
            return pick(
                ["\u{0}", "\u{85}", "\u{2028}", "\u{202E}", "\u{FEFF}", "\u{FFFD}", "\u{301}", "\u{1F986}", "İ", "K"],
                &rng)
        default:
            while true {
                if let scalar = Unicode.Scalar(UInt32.random(in: 0...0x10FFFF, using: &rng)) { return scalar }
            }
        }
    }

    static func string<R: RandomNumberGenerator>(length: ClosedRange<Int>, _ rng: inout R) -> String {
        var text = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: length, using: &rng) { text.append(scalar(&rng)) }
        return String(text)
    }
}

// MARK: - Configuration generators

private let tableNames = ConfigurationParser.schema.keys.sorted()
private let allKeys = ConfigurationParser.schema.values.flatMap { $0 }
private let unknownKeys = [
    "tokenurl", "scpoe", "x", "\"quoted key\"", "endpoint.token_url", "a.b.c", "ｔｏｋｅｎ", "mode ", "level\t",
]

/// Values for any key: valid and invalid, of every TOML type.
private let valueFragments: [String] = [
    #""https://v1.api.us.janrain.com/abc-123/login/token""#, #""http://127.0.0.1:8080/token""#,
    #""http://[::1]:9/t?x=1""#, #""http://example.com/token""#, #""ftp://x/""#, #""https://a]:b:80/""#,
    #""https://[[a]/""#, #""https://h:0/""#, #""https://v1.api.us.janrain.com""#, #""abc-123""#, #""a b""#,
    #""/etc/webhook-tokend/client-secret""#, #""relative/path""#, #""""#, #""s3cr\"et""#, #""\u0000""#,
    #""line\nbreak""#, #""*:webhooks/**""#, #""30s""#, #""1h30m""#, #""500ms""#, #""0s""#, #""1.5s""#,
    #""2.5ms""#, #""0.0004s""#, #""90""#, #""99999999999999999999h""#, #""1e3s""#, #""-5s""#, #""0660""#,
    #""0777""#, #""000""#, #""007""#, #""0007""#, #""660""#, #""999""#, #""0o660""#, #""info""#, #""debug""#,
    #""verbose""#, #""webhook""#, "0", "1", "-1", "7", "1024", "100001", "9223372036854775807",
    "99999999999999999999", "0.25", "0.15", "0.9", "0.05", "0.5", "1e400", "5e-05", "nan", "inf", "-0.0",
    "true", "1979-05-27T07:32:00Z", "07:32:00", #"["alice", 1000]"#, #"["a b"]"#, "[4294967295]", "[]",
    #"[[1], "x"]"#, #"{ a = 1 }"#, "'literal'", #"'''multi\nline'''"#, #""""multi\nline""""#,
]

/// Pieces of TOML-ish text, glued together at random into mostly invalid documents.
private let soupFragments: [String] =
    tableNames.map { "[\($0)]" } + allKeys + unknownKeys + valueFragments + [
        "[unknown]", "[[endpoint]]", "[endpoint.sub]", "[", "]", "[[", "]]", "=", " = ", "\n", "\n", "\n", "\r\n",
        "\r", "\t", " ", "#", "# comment\n", "\"", "'", "\"\"\"", "'''", "\\", "\\u0000", "\\uD800", "\\U0010FFFF",
        "\u{0}", ",", "{", "}", ".", "é", "ß", "İ", "\u{202E}", "🦆", "\u{FEFF}", "\u{2028}",
        String(repeating: "a", count: 5000), String(repeating: "[", count: 300),
        "x = " + String(repeating: "[", count: 2000), "x = " + String(repeating: "{ a = ", count: 500),
    ]

private let fragmentSoup = Generator<String, Shrink.None<String>> { rng in
    var text = ""
    for _ in 0..<Int.random(in: 0...60, using: &rng) {
        text += Fuzz.chance(0.9, &rng) ? Fuzz.pick(soupFragments, &rng) : Fuzz.string(length: 1...8, &rng)
    }
    return text
}

/// Documents with the configuration's shape: known tables, known (and a few unknown) keys, values
/// valid and invalid; a fair share of them are valid configurations, which exercises the round trip.
private let structuredDocument = Generator<String, Shrink.None<String>> { rng in
    var text = ""
    let required: [(String, [String])] = [
        (
            "endpoint",
            [
                Fuzz.chance(0.7, &rng)
                    ? "token_url = "
                        + Fuzz.pick(
                            [
                                #""https://v1.api.us.janrain.com/abc-123/login/token""#, #""http://localhost:8080/t""#,
                                #""http://[::1]/""#, #""https://idp.example.com:8443/oauth2/token?x=1""#,
                            ], &rng)
                    : "base_url = \"https://v1.api.us.janrain.com/\"\ncustomer_id = \"abc-123\""
            ]
        ),
        (
            "credentials",
            [
                "client_id = "
                    + Fuzz.pick(
                        [#""client-1""#, #""ü""#, #""with \"quote\" and \\""#, #""tab\tin""#, #""\u007F""#], &rng)
            ]
        ),
    ]
    for (table, lines) in required {
        text += "[\(table)]\n" + lines.joined(separator: "\n") + "\n"
        for key in ConfigurationParser.schema[table] ?? [] where Fuzz.chance(0.3, &rng) && !text.contains("\n\(key) =")
        {
            text +=
                "\(key) = \(Fuzz.pick(Fuzz.chance(0.9, &rng) ? validValues[key] ?? valueFragments : valueFragments, &rng))\n"
        }
    }
    for table in ["socket", "renewal", "access", "logging"] where Fuzz.chance(0.7, &rng) {
        text += "\n[\(table)]\n"
        for key in ConfigurationParser.schema[table] ?? [] where Fuzz.chance(0.4, &rng) {
            text +=
                "\(key) = \(Fuzz.pick(Fuzz.chance(0.95, &rng) ? validValues[key] ?? valueFragments : valueFragments, &rng))\n"
        }
    }
    if Fuzz.chance(0.1, &rng) { text += "\(Fuzz.pick(unknownKeys, &rng)) = 1\n" }
    return text
}

/// Mostly valid values per key, so that whole valid configurations come out often.
private let validValues: [String: [String]] = [
    "scope": [#""*:webhooks/**""#, #""api""#, #""ü \"quoted\" \\ \u0001""#],
    "ca_file": [#""/etc/ssl/certs/ca.pem""#],
    "timeout": [#""15s""#, #""2.5ms""#, #""0.0004s""#, #""1.0000001s""#, #""1m0.5s""#],
    "client_secret_file": [#""/etc/webhook-tokend/client-secret""#],
    "client_secret": [#""s3cret""#],
    "path": [
        #""/run/webhook-tokend/token.sock""#, #""/tmp/ü.sock""#, "\"/" + String(repeating: "p", count: 107) + "\"",
    ],
    "mode": [#""0660""#, #""0600""#, #""660""#, #""0777""#, #""000""#, #""007""#, #""0007""#, #""0000""#, #""0040""#],
    "group": [#""webhook""#, "0", "1000", #""""#],
    "max_connections": ["1", "1024", "100000"],
    "header_timeout": [#""5s""#, #""1.5s""#, #""250ms""#, #""2.5ms""#, #""1m""#],
    "idle_timeout": [#""60s""#, #""0.0004s""#, #""1h30m""#],
    "renew_at_remaining": ["0.25", "0.15", "0.9", "0.3333333333333333"],
    "jitter": ["0", "0.0", "0.05", "0.5", "5e-05"],
    "min_remaining_life": [#""0s""#, #""30s""#, #""1.25s""#],
    "retry_initial": [#""1s""#, #""500ms""#],
    "retry_max": [#""5m""#, #""1h""#],
    "retry_max_permanent": [#""1h""#, #""2h""#],
    "retry_after_max": [#""10m""#, #""0.5ms""#],
    "refresh_min_interval": [#""0s""#, #""30s""#],
    "refresh_min_interval_per_user": [#""0s""#, #""5m""#],
    "allowed_users": [#"["alice", 1000]"#, "[]", #"["root"]"#, "[0, 4294967294]"],
    "allowed_groups": [#"["webhook"]"#, "[]", "[42]"],
    "level": [#""info""#, #""trace""#, #""critical""#],
]

/// A complete, valid configuration with every key given: the seed of the mutation fuzzer.
private let fullConfiguration = """
    [endpoint]
    token_url = "https://v1.api.us.janrain.com/abc-123/login/token"
    scope = "*:webhooks/**"
    ca_file = "/etc/ssl/certs/ca.pem"
    timeout = "15s"

    [credentials]
    client_id = "client-1"
    client_secret_file = "/etc/webhook-tokend/client-secret"

    [socket]
    path = "/run/webhook-tokend/token.sock"
    mode = "0660"
    group = "webhook"
    max_connections = 1024
    header_timeout = "5s"
    idle_timeout = "60s"

    [renewal]
    renew_at_remaining = 0.25
    jitter = 0.05
    min_remaining_life = "30s"
    retry_initial = "1s"
    retry_max = "5m"
    retry_max_permanent = "1h"
    retry_after_max = "10m"
    refresh_min_interval = "30s"
    refresh_min_interval_per_user = "5m"

    [access]
    allowed_users = ["alice", 1000]
    allowed_groups = ["webhook"]

    [logging]
    level = "info"

    """

/// Random edits of ``fullConfiguration``: lines deleted, duplicated, swapped or replaced, and
/// characters inserted, deleted or replaced.
private let mutatedConfiguration = Generator<String, Shrink.None<String>> { rng in
    var lines = fullConfiguration.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        let index = Int.random(in: 0..<lines.count, using: &rng)
        switch Int.random(in: 0..<8, using: &rng) {
        case 0 where lines.count > 1:
            lines.remove(at: index)
        case 1:
            lines.insert(lines[index], at: Int.random(in: 0...lines.count, using: &rng))
        case 2:
            lines.swapAt(index, Int.random(in: 0..<lines.count, using: &rng))
        case 3:
            lines[index] = Fuzz.pick(soupFragments, &rng)
        case 4:
            // A key's value replaced by any other value.
            if let equals = lines[index].firstIndex(of: "=") {
                lines[index] = lines[index][...equals] + " " + Fuzz.pick(valueFragments, &rng)
            }
        case 5:
            var scalars = Array(lines[index].unicodeScalars)
            scalars.insert(Fuzz.scalar(&rng), at: Int.random(in: 0...scalars.count, using: &rng))
            lines[index] = String(String.UnicodeScalarView(scalars))
        case 6 where !lines[index].isEmpty:
            var scalars = Array(lines[index].unicodeScalars)
            let start = Int.random(in: 0..<scalars.count, using: &rng)
            let end = Int.random(in: start...scalars.count, using: &rng)
            if Fuzz.chance(0.5, &rng) {
                scalars.removeSubrange(start..<end)
            } else {
                scalars.replaceSubrange(start..<end, with: [Fuzz.scalar(&rng)])
            }
            lines[index] = String(String.UnicodeScalarView(scalars))
        default:
            lines.insert(Fuzz.string(length: 0...40, &rng), at: index)
        }
    }
    return lines.joined(separator: Fuzz.chance(0.1, &rng) ? "\r\n" : "\n")
}

// MARK: - The contract

/// The number of lines of a text, as an editor (and the TOML parser) counts them.
private func lineCount(_ text: String) -> Int {
    text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
}

/// The parser's contract for any input: a configuration that survives its own rendering, or an
/// error whose every issue names the file, says something, and points at a line of the file.
private func checkContract(_ text: String) {
    let configuration: Configuration
    do {
        configuration = try ConfigurationParser.parse(text, file: fuzzFile)
    } catch {
        #expect(!error.issues.isEmpty, "an error without issues")
        let lines = lineCount(text)
        for issue in error.issues {
            #expect(issue.file == fuzzFile)
            #expect(!issue.problem.description.isEmpty, "an issue that says nothing: \(issue)")
            if let line = issue.line {
                #expect((1...lines).contains(line), "line \(line) outside 1...\(lines): \(issue)")
            }
        }
        return
    }
    checkRoundTrip(configuration)
}

/// `--check-config` prints ``Configuration/renderedTOML()``; reading that back must give the same
/// configuration. The one exception is an inline secret, which is rendered redacted (so it reads
/// back as the literal secret `<redacted>`); every other field must survive.
private func checkRoundTrip(_ configuration: Configuration) {
    let rendered = configuration.renderedTOML()
    var expected = configuration
    for index in expected.profiles.indices {
        if case .inline = expected.profiles[index].credentials.secretSource {
            expected.profiles[index].credentials.secretSource = .inline(ClientSecret("<redacted>"))
        }
    }
    do {
        let again = try ConfigurationParser.parse(rendered, file: fuzzFile)
        #expect(again == expected, "the rendering does not read back as the same configuration:\n\(rendered)")
    } catch {
        Issue.record("the rendering of a valid configuration is refused: \(error)\n\(rendered)")
    }
}

@Suite struct ConfigurationParserFuzzTests {
    @Test func fragmentSoupParsesOrFailsCleanly() async {
        await propertyCheck(count: 1500, input: fragmentSoup) { text in
            checkContract(text)
        }
    }

    @Test func structuredDocumentsParseOrFailCleanly() async {
        await propertyCheck(count: 1000, input: structuredDocument) { text in
            checkContract(text)
        }
    }

    @Test func mutatedConfigurationsParseOrFailCleanly() async {
        await propertyCheck(count: 1500, input: mutatedConfiguration) { text in
            checkContract(text)
        }
    }

    /// Guards the fuzzers against testing nothing: the seed file parses, with every key honoured,
    /// and a good share of the structured documents are valid (so the round trip really runs).
    @Test func generatorsReachValidConfigurations() async throws {
        let configuration = try ConfigurationParser.parse(fullConfiguration, file: fuzzFile)
        #expect(configuration.socket.group == "webhook")
        checkRoundTrip(configuration)
        var valid = 0
        await propertyCheck(count: 200, input: structuredDocument) { text in
            if (try? ConfigurationParser.parse(text, file: fuzzFile)) != nil { valid += 1 }
        }
        #expect(valid >= 20, "only \(valid) of 200 structured documents were valid")
    }

    /// The scan that guards the TOML library (see `TOMLPreflight`) must not refuse valid TOML:
    /// comments with any printable Unicode, and blank lines, change nothing.
    @Test func commentsAndBlankLinesChangeNothing() async throws {
        let original = try ConfigurationParser.parse(fullConfiguration, file: fuzzFile)
        let decorated = Generator<String, Shrink.None<String>> { rng in
            fullConfiguration.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                var line = String(line)
                if Fuzz.chance(0.3, &rng) {
                    let comment = String(
                        String.UnicodeScalarView(
                            Fuzz.string(length: 0...20, &rng).unicodeScalars.filter {
                                ($0.value >= 0x20 && $0.value != 0x7F) || $0 == "\t"
                            }))
                    line += (line.isEmpty ? "" : " ") + "#" + comment
                }
                if Fuzz.chance(0.1, &rng) { line = "\t \n" + line }
                return line
            }.joined(separator: "\n")
        }
        await propertyCheck(count: 300, input: decorated) { text in
            do {
                #expect(try ConfigurationParser.parse(text, file: fuzzFile) == original)
            } catch {
                Issue.record("refused: \(error)")
            }
        }
    }

    /// TOML forbids a raw NUL anywhere in a document. One inside a valid file must be refused, with
    /// its line, rather than cut the file short (the TOML library reads a C string).
    @Test func aNulCharacterAnywhereIsRefused() async {
        let scalars = Array(fullConfiguration.unicodeScalars)
        await propertyCheck(count: 300, input: Gen.int(in: 0...scalars.count)) { position in
            var text = scalars
            text.insert("\u{0}", at: position)
            let document = String(String.UnicodeScalarView(text))
            let expectedLine = lineCount(String(String.UnicodeScalarView(text[..<position])))
            do throws(ConfigurationError) {
                let configuration = try ConfigurationParser.parse(document, file: fuzzFile)
                Issue.record("a NUL at line \(expectedLine) was accepted: \(configuration)")
            } catch {
                #expect(error.issues.contains { $0.line == expectedLine }, "\(error)")
            }
        }
    }
}
