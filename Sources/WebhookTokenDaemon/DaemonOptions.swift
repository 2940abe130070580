public import WebhookTokenCore

/// What the command line asked the daemon to do.
public struct DaemonOptions: Sendable {
    public var configurationPath: String
    /// Validate, print the effective configuration, exit.
    public var checkConfiguration: Bool
    /// Self-contained demo: an emulated token endpoint in-process, the socket in a temporary directory.
    public var developmentMode: Bool
    /// Overrides `[socket] path` (mainly for dev mode).
    public var socketPath: String?
    /// Lifetime of the emulator's tokens in dev mode, in seconds.
    public var developmentTokenLifetime: Int
    /// Overrides `[logging] level`.
    public var logLevel: String?
    /// The profiles dev mode emulates (`--dev-profiles a,b`): "default" unless given.
    public var developmentProfiles: [String]

    public init(
        configurationPath: String, checkConfiguration: Bool = false, developmentMode: Bool = false,
        socketPath: String? = nil, developmentTokenLifetime: Int = 30, logLevel: String? = nil,
        developmentProfiles: [String] = [Configuration.Profile.defaultName]
    ) {
        self.developmentProfiles = developmentProfiles
        self.configurationPath = configurationPath
        self.checkConfiguration = checkConfiguration
        self.developmentMode = developmentMode
        self.socketPath = socketPath
        self.developmentTokenLifetime = developmentTokenLifetime
        self.logLevel = logLevel
    }
}

extension DaemonOptions {
    /// What the command line says over the configuration file (`--socket`, `--log-level`): at
    /// start-up and on every reload alike, so that a reload does not take them for changes.
    func applyOverrides(to configuration: inout Configuration) {
        if let socketPath { configuration.socket.path = socketPath }
        if let logLevel { configuration.logging.level = logLevel }
    }
}

/// Exit statuses, from sysexits(3) where one fits.
public enum DaemonExitCode {
    public static let success: Int32 = 0
    /// A runtime failure: the socket could not be bound or adopted. A restart may help.
    public static let failure: Int32 = 1
    /// EX_CONFIG: the configuration (or the secret it names) is unusable — including when the
    /// token endpoint refuses the very first request permanently (`invalid_client`, …): only a
    /// changed configuration can help, so systemd should not restart (`RestartPreventExitStatus=78`).
    public static let configuration: Int32 = 78
    /// EX_TEMPFAIL: something the configuration names could not be checked yet (the user
    /// database did not answer a lookup): a restart is expected to succeed.
    public static let temporaryFailure: Int32 = 75
}
