import Foundation

/// What `.ci/package --image` leaves in dist/: the Debian package and the OCI archive, named after
/// debian/changelog's version. The packaging tests use these exact files, as a host would.
enum PackagingArtifacts {
    static let dist = "\(SystemdContainer.repository)/dist"

    /// The version at the top of debian/changelog: `webhook-tokend (0.1.0) unstable; …`.
    static let version: String = {
        let changelog =
            (try? String(contentsOfFile: "\(SystemdContainer.repository)/debian/changelog", encoding: .utf8)) ?? ""
        let first = changelog.split(separator: "\n").first ?? ""
        guard let open = first.firstIndex(of: "("), let close = first.firstIndex(of: ")") else { return "?" }
        return String(first[first.index(after: open)..<close])
    }()

    /// (Blocking, as a lazy `static let` must: `dpkg --print-architecture` takes milliseconds.)
    static let architecture: String = {
        (try? Shell.runBlocking("/usr/bin/dpkg", ["--print-architecture"]).standardOutput.trimmingCharacters(
            in: .whitespacesAndNewlines)) ?? "amd64"
    }()

    static var debianPackage: String { "\(dist)/webhook-tokend_\(version)_\(architecture).deb" }
    static var imageArchive: String { "\(dist)/webhook-tokend_\(version)_oci.tar" }

    /// Whether `path` was built. Where it was not, say so loudly; in CI the tests run anyway, and
    /// fail, rather than skip (.ci/test builds both before the tests).
    static func available(_ path: String) -> Bool {
        if FileManager.default.fileExists(atPath: path) { return true }
        let inCI = ProcessInfo.processInfo.environment["CI"] != nil
        print(
            """
            ************************************************************************
            PACKAGING TESTS \(inCI ? "CANNOT RUN (CI: running them to fail)" : "SKIPPED"): \(path) is missing
            (.ci/package --image builds it)
            ************************************************************************
            """)
        return inCI
    }
}
