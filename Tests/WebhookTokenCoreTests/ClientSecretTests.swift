import Testing
import WebhookTokenCore

@Suite struct ClientSecretTests {
    @Test(arguments: [
        ("s3cr3t\n", "s3cr3t"),
        ("s3cr3t\r\n", "s3cr3t"),
        ("s3cr3t", "s3cr3t"),
        ("s3cr3t\n\n", "s3cr3t\n"),
        ("s3cr3t\r\n\r\n", "s3cr3t\r\n"),
        ("s3cr3t\r", "s3cr3t\r"),
        (" s3cr3t \n", " s3cr3t "),
        ("pé\n", "pé"),
        ("\n", ""),
        ("", ""),
    ])
    func fileContentsLoseExactlyOneTrailingLineBreak(contents: String, secret: String) {
        #expect(ClientSecret(fileContents: contents).revealed == secret)
    }

    @Test func secretIsRedactedWhenPrinted() {
        let secret = ClientSecret("hunter2")
        #expect(secret.description == "<redacted>")
        #expect(secret.debugDescription == "<redacted>")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect(secret.revealed == "hunter2")
    }
}
