extension Configuration {
    /// The effective configuration as TOML, defaults filled in and the secret redacted: what
    /// `webhook-tokend --check-config` prints, so an operator sees what the daemon will really do.
    public func renderedTOML() -> String {
        var out = "[endpoint]\n"
        out += "token_url = \(quoted(endpoint.tokenURL.description))\n"
        out += "scope = \(quoted(endpoint.scope))\n"
        if let caFile = endpoint.caFile { out += "ca_file = \(quoted(caFile))\n" }
        out += "timeout = \(quoted(DurationSyntax.format(endpoint.timeout)))\n"
        out += "\n[credentials]\n"
        out += "client_id = \(quoted(credentials.clientID))\n"
        switch credentials.secretSource {
        case .file(let path):
            out += "client_secret_file = \(quoted(path))\n"
        case .inline:
            out += "client_secret = \"<redacted>\"\n"
        case .systemdCredential(let name):
            out += "# client secret: systemd credential \"\(name)\" in $CREDENTIALS_DIRECTORY\n"
        }
        out += "\n[socket]\n"
        out += "path = \(quoted(socket.path))\n"
        // Four octal digits, as the parser requires three or four: `"0\(octal)"` rendered mode 0o7 as
        // "07", which the parser refuses (found by ConfigurationParserFuzzTests).
        let octal = String(socket.mode, radix: 8)
        out += "mode = \"\(String(repeating: "0", count: max(0, 4 - octal.count)))\(octal)\"\n"
        if let group = socket.group { out += "group = \(quoted(group))\n" }
        out += "max_connections = \(socket.maximumConnections)\n"
        if let perUser = socket.maximumConnectionsPerUserSetting {
            out += "max_connections_per_user = \(perUser)\n"
        } else {
            out += "# max_connections_per_user = \(socket.maximumConnectionsPerUser)   (a quarter of max_connections)\n"
        }
        out += "header_timeout = \(quoted(DurationSyntax.format(socket.headerTimeout)))\n"
        out += "idle_timeout = \(quoted(DurationSyntax.format(socket.idleTimeout)))\n"
        out += "\n[renewal]\n"
        out += "renew_at_remaining = \(renewal.renewAtRemainingFraction)\n"
        out += "jitter = \(renewal.jitterFraction)\n"
        out += "min_remaining_life = \(quoted(DurationSyntax.format(renewal.minimumRemainingLife)))\n"
        out += "retry_initial = \(quoted(DurationSyntax.format(renewal.retryInitial)))\n"
        out += "retry_max = \(quoted(DurationSyntax.format(renewal.retryMaximum)))\n"
        out += "retry_max_permanent = \(quoted(DurationSyntax.format(renewal.retryMaximumPermanent)))\n"
        out += "retry_after_max = \(quoted(DurationSyntax.format(renewal.retryAfterMaximum)))\n"
        out += "refresh_min_interval = \(quoted(DurationSyntax.format(renewal.refreshMinimumInterval)))\n"
        out += "refresh_min_interval_per_user = \(quoted(DurationSyntax.format(renewal.refreshMinimumIntervalPerUser)))\n"
        out += "\n[access]\n"
        out += "allowed_users = [\(access.allowedUsers.map(rendered).joined(separator: ", "))]\n"
        out += "allowed_groups = [\(access.allowedGroups.map(rendered).joined(separator: ", "))]\n"
        out += "\n[logging]\n"
        out += "level = \(quoted(logging.level))\n"
        return out
    }

    private func rendered(_ principal: AccessPolicy.Principal) -> String {
        switch principal {
        case .name(let name): return quoted(name)
        case .id(let id): return String(id)
        }
    }

    private func quoted(_ text: String) -> String {
        "\"" + JSONText.escaped(text) + "\""
    }
}
