extension Configuration {
    /// The effective configuration as TOML, defaults filled in and the secret redacted: what
    /// `webhook-tokend --check-config` prints, so an operator sees what the daemon will really do.
    /// Made from ``ConfigurationKey/all``, so it shows every key the daemon reads; it parses back
    /// to the same configuration.
    public func renderedTOML() -> String {
        var sections: [String] = []
        func section(
            _ header: String, _ table: ConfigurationKey.Table, _ profile: Profile, sink: Sink? = nil, hook: Hook? = nil
        ) {
            let values = ConfigurationKey.Values(
                profile: profile, socket: socket, logging: logging, sink: sink, hook: hook)
            var text = table.isArray ? "[[\(header)]]\n" : "[\(header)]\n"
            for key in ConfigurationKey.keys(of: table) {
                guard let value = key.render(values) else { continue }
                text += value.hasPrefix("#") ? "\(value)\n" : "\(key.name) = \(value)\n"
            }
            sections.append(text)
        }
        let single = profile(named: Profile.defaultName)
        for table in ConfigurationKey.Table.allCases where !table.isArray {
            if table.isPerProfile {
                if let single, table.isPresent(in: single) { section(table.rawValue, table, single) }
            } else {
                section(table.rawValue, table, profiles[0])
            }
        }
        for profile in profiles where profile.name != Profile.defaultName {
            for table in ConfigurationKey.Table.allCases where table.isPerProfile && table.isPresent(in: profile) {
                section("profiles.\(profile.name).\(table.rawValue)", table, profile)
            }
        }
        for sink in sinks { section("sink", .sink, profiles[0], sink: sink) }
        for hook in hooks { section("hook", .hook, profiles[0], hook: hook) }
        return sections.joined(separator: "\n")
    }
}
