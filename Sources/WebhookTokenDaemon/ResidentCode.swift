import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Gives back the code pages that start-up and token fetches used and serving does not.
///
/// Loading the configuration, parsing arguments, setting up TLS and fetching a token run code
/// spread over the whole executable, and the kernel maps every page it touches (and, by fault-around,
/// its neighbours) into the process for good: about 11 MiB of the 20 MiB resident at rest
/// (Benchmarks/run). `MADV_DONTNEED` on the executable's and libraries' code mappings (`r-xp`: file
/// content that is never written) unmaps those pages; they stay in the page cache, where the kernel
/// can reclaim them, and the serving path faults the few it needs back in (minor faults, well under
/// a millisecond once). Data mappings are never touched: their pages may hold relocations or state.
enum ResidentCode {
    /// After a token fetch: in a second, when the fetch's connection is closed and, at start-up,
    /// the services are running.
    static func releaseSoon() {
        MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .seconds(1)) { release() }
    }

    /// Unmaps the pages of every private, file-backed code mapping of this process.
    static func release() {
        guard let maps = fopen("/proc/self/maps", "r") else { return }
        defer { fclose(maps) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), maps) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // "start-end perms offset dev inode path": code is "r-xp" with a path (not [vdso]).
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "r-xp", fields[5].hasPrefix("/") else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                let address = UnsafeMutableRawPointer(bitPattern: start)
            else { continue }
            madvise(address, Int(end - start), MADV_DONTNEED)
        }
    }
}
