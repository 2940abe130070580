import PropertyBased
import Testing
import WebhookTokenCore

// Property-based fuzzing of the token-response parser (issue 4 §6): whatever the endpoint (or a
// proxy in front of it) answers, the daemon must not crash, must never take garbage for a token,
// and must classify the failure so that retries go where they help. Bounded counts keep CI fast.
// To reproduce a failure, add the `.fixedSeed("…")` trait that the failure message names to the
// test (and remove it again before committing: it always records an issue).

/// One answer of the token endpoint.
struct EndpointAnswer: Sendable, CustomStringConvertible {
    var status: Int
    var contentType: String?
    var retryAfter: String?
    var body: [UInt8]
    var requestedScope: String

    var description: String {
        let shown =
            body.count > 400
            ? "\(body.count) bytes starting \(String(decoding: body.prefix(400), as: UTF8.self).debugDescription)"
            : String(decoding: body, as: UTF8.self).debugDescription
        return
            "status \(status), content type \(contentType.debugDescription), retry-after \(retryAfter.debugDescription), scope \(requestedScope.debugDescription), body \(shown)"
    }
}

// MARK: - JSON generation (independent of the code under test)

private func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case let c where c.value < 0x20 || c.value > 0x7E:
            if c.value > 0xFFFF {
                let v = c.value - 0x10000
                out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
            } else {
                out += hex4(c.value)
            }
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

private func hex4(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
}

private let tokenAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")

private func randomToken<R: RandomNumberGenerator>(_ rng: inout R) -> String {
    String((0..<Int.random(in: 1...64, using: &rng)).map { _ in Fuzz.pick(tokenAlphabet, &rng) })
}

/// A JSON value of a random type; `depth` bounds the nesting of generated containers.
private func jsonValue<R: RandomNumberGenerator>(depth: Int, _ rng: inout R) -> String {
    switch Int.random(in: 0..<(depth > 0 ? 9 : 7), using: &rng) {
    case 0: return jsonString(Fuzz.string(length: 0...20, &rng))
    case 1:
        return jsonString(
            Fuzz.pick(
                ["Bearer", "bearer", "BEARER", "mac", "", "3600", "invalid_client", "a b", "tok\u{0}en", "ü"], &rng))
    case 2: return String(Int.random(in: -5...100_000, using: &rng))
    case 3:
        return Fuzz.pick(
            [
                "0", "-0", "0.5", "1", "1.0", "0.999", "3600.9", "315360000", "315360001", "1e400", "-1e400", "1e-400",
                "9223372036854775808", "99999999999999999999999", "1E3", "-3600",
            ], &rng)
    case 4: return Fuzz.pick(["true", "false"], &rng)
    case 5: return "null"
    case 6: return jsonString(randomToken(&rng))
    case 7:
        return "["
            + (0..<Int.random(in: 0...3, using: &rng)).map { _ in jsonValue(depth: depth - 1, &rng) }.joined(
                separator: ",") + "]"
    default: return jsonObject(depth: depth - 1, &rng)
    }
}

private let realKeys = [
    "access_token", "token_type", "expires_in", "scope", "error", "error_description", "refresh_token", "ACCESS_TOKEN",
    "",
]

private func jsonObject<R: RandomNumberGenerator>(depth: Int, _ rng: inout R) -> String {
    let fields = (0..<Int.random(in: 0...6, using: &rng)).map { _ in
        jsonString(Fuzz.pick(realKeys, &rng)) + ":" + jsonValue(depth: depth, &rng)
    }
    return "{" + fields.joined(separator: Fuzz.pick([",", ", ", ",\n"], &rng)) + "}"
}

/// A body that is a correct success answer, with its token and whole-second lifetime.
private func validSuccess<R: RandomNumberGenerator>(_ rng: inout R) -> (body: String, token: String, seconds: Int64) {
    let token = randomToken(&rng)
    let seconds = Int64.random(in: 1...315_360_000, using: &rng)
    var fields = [
        "\"access_token\":" + jsonString(token),
        "\"token_type\":" + jsonString(Fuzz.pick(["Bearer", "bearer", "BEARER"], &rng)),
        "\"expires_in\":"
            + (Fuzz.chance(0.5, &rng) ? "\(seconds)" : "\(seconds).\(Int.random(in: 0...9, using: &rng))"),
    ]
    if Fuzz.chance(0.5, &rng) { fields.append("\"scope\":" + jsonString("*:webhooks/**")) }
    return ("{" + fields.shuffled(using: &rng).joined(separator: ",") + "}", token, seconds)
}

private func body<R: RandomNumberGenerator>(_ rng: inout R) -> [UInt8] {
    switch Int.random(in: 0..<10, using: &rng) {
    case 0: return (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    case 1, 2, 3: return Array(jsonObject(depth: 2, &rng).utf8)
    case 4: return Array(validSuccess(&rng).body.utf8)
    case 5:
        // A valid answer, cut short or with a byte changed.
        var bytes = Array(validSuccess(&rng).body.utf8)
        if Fuzz.chance(0.5, &rng) {
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
        } else {
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        }
        return bytes
    case 6:
        // Huge strings: a token over the length limit, or a body over the size limit.
        let length = Fuzz.pick(
            [
                TokenResponse.maximumTokenLength, TokenResponse.maximumTokenLength + 1,
                TokenResponse.maximumBodySize - 60, TokenResponse.maximumBodySize + 1,
            ], &rng)
        return Array(
            #"{"access_token":"\#(String(repeating: "a", count: length))","token_type":"Bearer","expires_in":3600}"#
                .utf8)
    case 7:
        // Deep nesting, up to the body size limit.
        let depth = Int.random(in: 1...(TokenResponse.maximumBodySize / 2 - 20), using: &rng)
        let key = Fuzz.pick(["access_token", "error", "expires_in"], &rng)
        return Array(
            ("{\"\(key)\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}").utf8)
    case 8:
        return Array(
            Fuzz.pick(
                [
                    "", "null", "[]", "\"x\"", "{", "{}",
                    "{\"error\":\"invalid_client\",\"error_description\":\"bad\\u0000\\n secret\"}", "\u{FEFF}{}",
                    "<html>502 Bad Gateway</html>",
                ], &rng
            ).utf8)
    default: return Array(Fuzz.string(length: 0...50, &rng).utf8)
    }
}

private let contentTypes: [String?] = [
    nil, "application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/problem+json",
    "text/html", "text/plain", "", ";", "application/jsonx", "application/json\0",
]
private let retryAfters: [String?] = [
    nil, "0", "120", " 5 ", "-1", "abc", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "",
]

private let anyAnswer = Generator<EndpointAnswer, Shrink.None<EndpointAnswer>> { rng in
    let status =
        Fuzz.chance(0.5, &rng)
        ? Fuzz.pick([200, 201, 204, 299, 301, 302, 400, 401, 403, 404, 408, 429, 500, 502, 503, 599], &rng)
        : Int.random(in: 100...599, using: &rng)
    return EndpointAnswer(
        status: status, contentType: Fuzz.pick(contentTypes, &rng), retryAfter: Fuzz.pick(retryAfters, &rng),
        body: body(&rng), requestedScope: Fuzz.pick(["*:webhooks/**", "", "a b"], &rng))
}

// MARK: - Properties

/// The severity the daemon's retry policy expects for a failed answer of this status.
/// Permanent means "the credentials or the request are wrong": a 401, a 4xx with an RFC 6749 §5.2
/// code that says so, or a token without the requested scope; everything else heals by retrying.
private func expectedSeverity(_ failure: FetchFailure, status: Int) -> FetchFailure.Severity {
    switch status {
    case 200..<300: return failure.kind == .insufficientScope ? .permanent : .transient
    case 401: return .permanent
    case 408, 429: return .transient
    case 400..<500:
        return failure.oauthError.map(TokenResponse.permanentOAuthErrors.contains) == true ? .permanent : .transient
    default: return .transient
    }
}

private func interpret(_ answer: EndpointAnswer) -> Result<IssuedToken, FetchFailure> {
    TokenResponse.interpret(
        status: answer.status, contentType: answer.contentType, retryAfter: answer.retryAfter, body: answer.body,
        requestedScope: answer.requestedScope)
}

@Suite struct TokenResponseFuzzTests {
    @Test func anyAnswerIsATokenOrAClassifiedFailure() async {
        await propertyCheck(count: 2000, input: anyAnswer) { answer in
            switch interpret(answer) {
            case .success(let token):
                #expect((200..<300).contains(answer.status), "a token from status \(answer.status)")
                #expect(!token.accessToken.isEmpty)
                #expect(token.accessToken.utf8.count <= TokenResponse.maximumTokenLength)
                #expect(
                    token.accessToken.utf8.allSatisfy { (0x21...0x7E).contains($0) },
                    "token \(token.accessToken.debugDescription)")
                #expect(token.lifetime >= .seconds(1))
                #expect(token.lifetime <= .seconds(315_360_000))
                #expect(answer.body.count <= TokenResponse.maximumBodySize)
            case .failure(let failure):
                #expect(failure.httpStatus == answer.status)
                #expect(failure.severity == expectedSeverity(failure, status: answer.status), "\(failure)")
                switch answer.status {
                case 200..<300:
                    #expect([.invalidResponse, .responseTooLarge, .insufficientScope].contains(failure.kind))
                case 300..<400: #expect(failure.kind == .redirect)
                case 429: #expect(failure.kind == .rateLimited)
                case 408: #expect(failure.kind == .timeout)
                case 500..<600: #expect(failure.kind == .serverError)
                default:
                    #expect(
                        failure.kind
                            == (failure.isPermanent
                                ? .rejected : failure.kind == .serverError ? .serverError : .unexpectedStatus))
                }
                // Endpoint text is bounded printable ASCII, whatever the endpoint sent.
                for text in [failure.oauthError, failure.oauthErrorDescription, failure.detail].compactMap({ $0 }) {
                    #expect(!text.isEmpty && text.utf8.count <= 400)
                    #expect(text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "\(text.debugDescription)")
                }
                if let retryAfter = failure.retryAfter {
                    #expect(retryAfter >= .zero)
                    #expect(answer.retryAfter.flatMap { Int64($0.trimmedWhitespace) } != nil)
                }
            }
        }
    }

    /// The other side of the contract: a correct answer is always taken, with its token and lifetime.
    @Test func aCorrectAnswerIsAlwaysATokenForAnyTwoHundredStatus() async {
        let answers = Generator<(EndpointAnswer, String, Int64), Shrink.None<(EndpointAnswer, String, Int64)>> { rng in
            let (body, token, seconds) = validSuccess(&rng)
            let answer = EndpointAnswer(
                status: Int.random(in: 200...299, using: &rng),
                contentType: Fuzz.pick(
                    [
                        nil, "application/json", "application/json; charset=utf-8", "Application/JSON",
                        "application/vnd.x+json",
                    ], &rng),
                retryAfter: Fuzz.pick(retryAfters, &rng), body: Array(body.utf8), requestedScope: "*:webhooks/**")
            return (answer, token, seconds)
        }
        await propertyCheck(count: 500, input: answers) { input in
            let (answer, token, seconds) = input
            guard case .success(let issued) = interpret(answer) else {
                Issue.record("refused a correct answer: \(answer): \(interpret(answer))")
                return
            }
            #expect(issued.accessToken == token)
            #expect(issued.lifetime == .seconds(seconds))
            #expect(issued.scope == "*:webhooks/**")
        }
    }

    /// Statuses outside 2xx never yield a token, even with a perfect token body.
    @Test func aTokenBodyWithAnErrorStatusIsNeverAToken() async {
        let answers = Generator<EndpointAnswer, Shrink.None<EndpointAnswer>> { rng in
            var status = Int.random(in: 100...599, using: &rng)
            if (200..<300).contains(status) { status += 100 }
            return EndpointAnswer(
                status: status, contentType: "application/json", retryAfter: Fuzz.pick(retryAfters, &rng),
                body: Array(validSuccess(&rng).body.utf8), requestedScope: "*:webhooks/**")
        }
        await propertyCheck(count: 500, input: answers) { answer in
            guard case .failure(let failure) = interpret(answer) else {
                Issue.record("a token from status \(answer.status)")
                return
            }
            #expect(failure.severity == expectedSeverity(failure, status: answer.status))
        }
    }
}

extension String {
    fileprivate var trimmedWhitespace: Substring {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return slice
    }
}
