import Testing
import WebhookTokenCore

@Suite struct TokenURLTests {
    @Test func splitsSchemeHostPortAndPath() throws {
        let url = try TokenURL(parsing: "https://login.example.com:8443/oauth2/token?tenant=7")
        #expect(url.scheme == "https")
        #expect(url.host == "login.example.com")
        #expect(url.port == 8443)
        #expect(url.pathAndQuery == "/oauth2/token?tenant=7")
        #expect(url.description == "https://login.example.com:8443/oauth2/token?tenant=7")
    }

    @Test(arguments: [
        ("HTTPS://Login.Example.COM/Token", "https://login.example.com/Token"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com?x=1", "https://example.com/?x=1"),
        ("https://[::1]:8443/token", "https://[::1]:8443/token"),
    ])
    func normalisesSchemeHostAndEmptyPath(input: String, normalised: String) throws {
        #expect(try TokenURL(parsing: input).description == normalised)
    }

    @Test(arguments: [
        ("http://v1.api.us.janrain.com/x", TokenURL.Problem.plainHTTPToNonLoopbackHost("v1.api.us.janrain.com")),
        ("http://127.0.0.1.example.com/x", .plainHTTPToNonLoopbackHost("127.0.0.1.example.com")),
        ("http://10.0.0.1/x", .plainHTTPToNonLoopbackHost("10.0.0.1")),
        ("http://[::2]/x", .plainHTTPToNonLoopbackHost("::2")),
        ("ftp://example.com/x", .unsupportedScheme("ftp")),
        ("example.com/token", .notAURL),
        ("://example.com", .notAURL),
        ("https:///token", .missingHost),
        ("https://user:secret@example.com/token", .hasUserInfo),
        ("https://example.com/token#x", .hasFragment),
        ("https://example.com:0/token", .badPort("0")),
        ("https://example.com:https/token", .badPort("https")),
        ("https://example.com/a token", .notAURL),
    ])
    func refusesWhatIsNotASafeTokenURL(input: String, problem: TokenURL.Problem) {
        #expect(throws: problem) { try TokenURL(parsing: input) }
    }

    @Test(arguments: [
        "http://localhost/token", "http://LOCALHOST:8080/token", "http://127.0.0.1:8080/token",
        "http://127.255.0.9/token", "http://[::1]/token",
    ])
    func allowsPlainHTTPOnlyToLoopbackHosts(input: String) throws {
        #expect(try TokenURL(parsing: input).scheme == "http")
    }

    @Test(arguments: [
        ("localhost", true), ("127.0.0.1", true), ("::1", true), ("127.0.0.256", false),
        ("128.0.0.1", false), ("localhost.example.com", false), ("127.0.0", false),
        // A name under .localhost goes to DNS with `hosts: files dns`.
        ("emulator.localhost", false),
    ])
    func recognisesLoopbackHosts(host: String, loopback: Bool) {
        #expect(TokenURL.isLoopback(host) == loopback)
    }

    @Test(arguments: [
        "https://v1.api.us.janrain.com", "https://v1.api.us.janrain.com/", "https://v1.api.us.janrain.com///",
    ])
    func identityCloudURLIsBaseThenCustomerThenLoginToken(base: String) throws {
        let url = try TokenURL(baseURL: base, customerID: "abc-123")
        #expect(url.description == "https://v1.api.us.janrain.com/abc-123/login/token")
    }
}
