import ArgumentParser
import TokenEndpointEmulator

#if canImport(Glibc)
    import Glibc
#endif

/// `token-endpoint-emulator`: the Identity Cloud token endpoint stand-in, as a process — for the
/// systemd container tests (the container has its own network) and for trying things by hand.
@main
struct TokenEndpointEmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-endpoint-emulator",
        abstract: "Serve an emulated OAuth 2.0 client-credentials token endpoint.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 0
    @Option(name: .customLong("client-id")) var clientID: String
    @Option(name: .customLong("client-secret-file"), help: "File holding the accepted client secret.")
    var clientSecretFile: String
    @Option(name: .customLong("expires-in"), help: "expires_in of issued tokens, seconds.") var expiresIn = 3600
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain for HTTPS.") var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for HTTPS.") var tlsKey: String?

    func run() async throws {
        guard let file = fopen(clientSecretFile, "r") else { throw ValidationError("cannot open \(clientSecretFile)") }
        var buffer = [CChar](repeating: 0, count: 4096)
        let line = fgets(&buffer, Int32(buffer.count), file).map { String(cString: $0) } ?? ""
        fclose(file)
        let secret = line.hasSuffix("\n") ? String(line.dropLast()) : line
        var tls: (certificateChainFile: String, privateKeyFile: String)?
        if let tlsCertificate, let tlsKey { tls = (tlsCertificate, tlsKey) }
        let emulator = TokenEndpointEmulator(
            options: .init(clientID: clientID, clientSecret: secret, expiresIn: expiresIn, tls: tls))
        let bound = try await emulator.start(host: host, port: port)
        print("listening on \(host):\(bound)")
        fflush(nil)
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
