import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Gives back the code pages that start-up and token fetches used and serving does not, and,
/// when the socket has been quiet for a while, those that serving used.
///
/// Loading the configuration, parsing arguments, setting up TLS and fetching a token run code
/// spread over the whole executable, and the kernel maps every page it touches (and, by fault-around,
/// its neighbours) into the process for good: about 11 MiB of the 20 MiB resident at rest
/// (Benchmarks/run). `MADV_DONTNEED` on the read-only file mappings of the executable and the
/// libraries unmaps those pages; they stay in the page cache, where the kernel can reclaim them,
/// and the serving path faults the few it needs back in (minor faults, well under a millisecond).
/// Serving one request faults in about 75 pages of code, and the kernel maps each fault's
/// neighbourhood with it (fault-around, and whole large folios of the page cache): about 5 MiB,
/// which the watchdog gives back when it finds the daemon at rest (``QuietSpell``).
///
/// Only mappings that hold nothing of the process's own are released: private, not writable,
/// file-backed, and with no anonymous page (`Anonymous: 0 kB` in `smaps`: no copy-on-write copy,
/// such as the relocated, then write-protected, RELRO data of a library — dropping those would
/// bring back the unrelocated file content). Nothing writes to such a mapping later.
enum ResidentCode {
    /// After a token fetch: in a second, when the fetch's connection is closed and, at start-up,
    /// the services are running.
    static func releaseSoon() {
        MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .seconds(1)) { release() }
    }

    /// Unmaps the pages of every read-only, private, file-backed mapping with no private pages.
    static func release() {
        guard let smaps = fopen("/proc/self/smaps", "r") else { return }
        defer { fclose(smaps) }
        var candidate: (start: UInt, end: UInt)?
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), smaps) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            if fields.first?.contains("-") == true, fields.count >= 5 {
                // A mapping's header: "start-end perms offset dev inode [path]".
                candidate = nil
                let range = fields[0].split(separator: "-")
                guard fields.count >= 6, fields[1] == "r-xp" || fields[1] == "r--p", fields[5].hasPrefix("/"),
                    range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16)
                else { continue }
                candidate = (start, end)
            } else if fields.first == "Anonymous:", let mapping = candidate {
                candidate = nil
                guard fields.count >= 2, fields[1] == "0",
                    let address = UnsafeMutableRawPointer(bitPattern: mapping.start)
                else { continue }
                madvise(address, Int(mapping.end - mapping.start), MADV_DONTNEED)
            }
        }
    }
}
