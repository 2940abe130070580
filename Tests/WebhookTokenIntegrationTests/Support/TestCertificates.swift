import Foundation

/// A throwaway certificate authority and a server certificate for 127.0.0.1/localhost, made with
/// the `openssl` command for each test run, so the token endpoint in the tests is real HTTPS that
/// the daemon verifies against `ca_file` — the same path production takes, with a private root.
struct TestCertificates: Sendable {
    let directory: String
    var caCertificate: String { "\(directory)/ca.pem" }
    var serverCertificate: String { "\(directory)/server.pem" }
    var serverKey: String { "\(directory)/server.key" }
    /// A second CA that signed nothing: trusting only it must fail the TLS handshake.
    var unrelatedCACertificate: String { "\(directory)/other-ca.pem" }

    /// Made once per test run, on first use. Awaited rather than a lazy `static let`: that would
    /// run openssl (a second or more under load) inside `swift_once` on a thread of the
    /// cooperative pool, and every other test reaching for it would block the other thread.
    static var shared: TestCertificates {
        get async { await making.value }
    }

    private static let making = Task {
        do {
            return try await make()
        } catch {
            fatalError("Cannot create test certificates with openssl: \(error)")
        }
    }

    static func make() async throws -> TestCertificates {
        let directory = try TemporaryDirectory.make(prefix: "wt-ca").path
        let script = """
            set -e
            cd '\(directory)'
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=webhook-tokend test CA' 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj '/CN=unrelated CA' 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
            chmod 644 ca.pem other-ca.pem server.pem
            """
        let result = try await Shell.run("/bin/sh", ["-c", script])
        guard result.status == 0 else {
            throw TestFailure("openssl failed: \(result.standardError)")
        }
        return TestCertificates(directory: directory)
    }
}
