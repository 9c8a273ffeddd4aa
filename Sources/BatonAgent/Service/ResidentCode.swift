#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Gives back the pages of batond's own binary that only start-up needed, and keeps the
/// kernel from mapping more of it than the code the agent then runs.
///
/// Most of an idle agent's RSS is not its own memory but clean pages of its binary, and
/// most of those were never executed: on a read fault Linux maps up to 16 neighbouring
/// pages already in the page cache ("fault-around", 64 KiB), and on a miss it reads
/// around the faulting page (read-around, 128 KiB). Measured on a 37 MB static batond:
/// 24 MB of file-backed RSS at idle. `release()` does now what memory pressure would do
/// later, and tries to keep it so (docs/footprint.md has what it achieves):
///
/// 1. `MADV_RANDOM` on the binary's mappings: a later fault reads one page, not the
///    128 KiB around it (measured on 6.18: true of the data, not of the executable text,
///    which the kernel reads ahead regardless);
/// 2. `MADV_PAGEOUT` (Linux 5.4) of their resident pages that are still the file's
///    (by /proc/self/pagemap; the relocated data is the process's own and stays): the
///    pages only this process maps (argument parsing, YAML, certificate loading,
///    reconciliation) leave the RSS and the page cache;
/// 3. `POSIX_FADV_DONTNEED` on the binary: the pages of it that nobody maps leave the
///    page cache, so fault-around finds no neighbour to map besides code the agent ran;
/// 4. the executable text split into areas of `executableReadChunk` bytes (alternately
///    `MADV_NORMAL` and `MADV_RANDOM`, so that the kernel cannot merge them): a fault in
///    an executable mapping reads ahead from the faulting page to the end of its area
///    (up to the disk's read-ahead, 8 MiB on some virtual disks, whatever `MADV_RANDOM`
///    says) and fault-around maps neighbours only within it, so each fault now costs
///    at most one area of RSS and page cache instead of up to 64 KiB and megabytes.
///
/// And first, `malloc_trim(0)` (glibc): the heap's free pages go back to the system, in
/// every arena, not only at the top of the heap (what an upload's or a deployment's
/// buffers left behind once freed).
///
/// What serving needs comes back on the next requests, one page at a time (a few hundred
/// small reads the first time a path runs, e.g. the first deployment). Pages that another
/// process maps (a `batond status` at the same moment, the C library) are not touched.
/// Each step may fail (an older kernel, no permission to page out a file the process
/// does not own); the rest still runs and nothing else changes.
public enum ResidentCode {
    /// What `release()` did, for the log.
    public struct Outcome: Sendable, Equatable {
        /// The binary's mappings found in /proc/self/maps.
        public var mappings = 0
        /// Of them, how many had pages the kernel paged out (MADV_PAGEOUT accepted).
        public var pagedOut = 0
        /// Resident set (VmRSS) before and after, in KiB; 0 where /proc did not say.
        public var residentBefore = 0
        public var residentAfter = 0
    }

    // The values from the kernel's uapi headers, the same on x86_64 and aarch64; the C
    // library's headers may be older than the kernel.
    private static let madvNormal: Int32 = 0
    private static let madvRandom: Int32 = 1
    private static let madvPageout: Int32 = 21
    private static let fadvDontneed: Int32 = 4

    /// glibc's `malloc_trim`, which Swift's Glibc module does not import; nil where the C
    /// library has none (musl).
    static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// glibc's `mallopt`, looked up like `malloc_trim`; nil where the C library has none.
    static let mallopt: (@convention(c) (Int32, Int32) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "mallopt") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// `M_ARENA_MAX` (malloc.h).
    static let mallocArenaMax: Int32 = -8

    /// Advises and pages out the binary's mappings; see the type's comment.
    @discardableResult
    public static func release() -> Outcome {
        var outcome = Outcome()
        outcome.residentBefore = residentKiB()
        _ = mallocTrim?(0)
        #if os(Linux)
        let exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard exe >= 0 else { return outcome }
        defer { close(exe) }
        var info = stat()
        guard fstat(exe, &info) == 0 else { return outcome }
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        defer { if pagemap >= 0 { close(pagemap) } }
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        for mapping in mappings(inode: UInt64(info.st_ino)) {
            let range = mapping.range
            outcome.mappings += 1
            guard let start = UnsafeMutableRawPointer(bitPattern: range.lowerBound) else { continue }
            // The text gets its advice area by area: advising it whole first would merge
            // the areas of the last trim only for `boundReads` to split them again.
            if mapping.executable {
                // An area is at least a page (64 KiB on some arm64 kernels).
                boundReads(of: range, chunk: max(executableReadChunk, pageSize))
            } else {
                _ = madvise(start, Int(range.upperBound - range.lowerBound), madvRandom)
            }
            var pagedOut = false
            for run in filePageRuns(range, pageSize: pageSize, pagemap: pagemap) {
                if let base = UnsafeMutableRawPointer(bitPattern: run.lowerBound),
                    madvise(base, Int(run.upperBound - run.lowerBound), madvPageout) == 0
                {
                    pagedOut = true
                }
            }
            if pagedOut { outcome.pagedOut += 1 }
        }
        _ = posix_fadvise(exe, 0, 0, fadvDontneed)
        #endif
        outcome.residentAfter = residentKiB()
        return outcome
    }

    /// The size of the areas the executable text is split into (step 4 of the type's
    /// comment). Smaller areas map fewer cold neighbours but cost more areas (about 200
    /// bytes of kernel memory each: 1,500 for batond's 23 MB of text at 16 KiB) and more,
    /// smaller reads the first time code runs after a trim. docs/footprint.md has the
    /// measurements behind 16 KiB.
    static let executableReadChunk: UInt = 16 * 1024

    /// Splits an executable mapping into areas of `chunk` bytes: the areas at odd
    /// multiples of `chunk` are advised `MADV_NORMAL`, the others `MADV_RANDOM`, so
    /// neighbours differ and stay apart (the kernel merges neighbouring areas whose
    /// flags are the same). Decided by absolute address, so a second call (the next idle
    /// trim) on areas already split gives each the advice it has, and changes nothing.
    /// What the flags say about read-ahead does not matter for the text (the kernel reads
    /// executable mappings ahead regardless); what matters is that read-ahead and
    /// fault-around stop at an area's end.
    static func boundReads(of range: Range<UInt>, chunk: UInt = executableReadChunk) {
        guard chunk > 0 else { return }
        var low = range.lowerBound / chunk * chunk
        while low < range.upperBound {
            let start = max(low, range.lowerBound), end = min(low + chunk, range.upperBound)
            if let base = UnsafeMutableRawPointer(bitPattern: start) {
                _ = madvise(base, Int(end - start), (low / chunk) % 2 == 1 ? madvNormal : madvRandom)
            }
            low += chunk
        }
    }

    /// A mapping of the binary: its addresses, and whether it is executable (its text).
    struct Mapping: Equatable {
        var range: Range<UInt>
        /// As /proc/self/maps gives them, e.g. "r-xp".
        var permissions: String
        var executable: Bool { permissions.contains("x") }
    }

    /// Every mapping of the file with this inode, from /proc/self/maps: text, read-only
    /// data, and the writable segment (whose pages that were only read are still the
    /// file's).
    static func mappings(inode: UInt64) -> [Mapping] {
        parseMaps(readProcFile("/proc/self/maps"), inode: inode)
    }

    /// How many lines of /proc/self/maps (the kernel's areas) map the file with this
    /// inode, before `parseMaps` joins them.
    static func areaCount(inode: UInt64) -> Int {
        readProcFile("/proc/self/maps").split(separator: "\n").filter { line in
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            return fields.count >= 5 && UInt64(fields[4]) == inode
        }.count
    }

    /// Lines "start-end perms offset dev inode path" whose inode is the binary's;
    /// neighbouring lines with the same permissions (the areas `boundReads` split the
    /// text into) are joined back into one mapping.
    static func parseMaps(_ text: String, inode: UInt64) -> [Mapping] {
        var mappings: [Mapping] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 6, UInt64(fields[4]) == inode else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16), low < high
            else { continue }
            let permissions = String(fields[1])
            if let last = mappings.last, last.range.upperBound == low, last.permissions == permissions {
                mappings[mappings.count - 1].range = last.range.lowerBound..<high
            } else {
                mappings.append(Mapping(range: low..<high, permissions: permissions))
            }
        }
        return mappings
    }

    /// The runs of pages in `range` that are resident and still pages of the file, by
    /// /proc/self/pagemap (bit 63 present, bit 61 file page). Pages a relocation wrote
    /// are the process's own (anonymous) copies: paging those out would only swap the
    /// agent's data, so they are left alone. Without pagemap: no runs.
    static func filePageRuns(_ range: Range<UInt>, pageSize: UInt, pagemap: Int32) -> [Range<UInt>] {
        guard pagemap >= 0, pageSize > 0 else { return [] }
        let count = Int((range.upperBound - range.lowerBound) / pageSize)
        var entries = [UInt64](repeating: 0, count: count)
        let wanted = count * MemoryLayout<UInt64>.size
        let got = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, wanted, off_t(range.lowerBound / pageSize) * 8) }
        guard got == wanted else { return [] }
        return fileRuns(entries, base: range.lowerBound, pageSize: pageSize)
    }

    /// Joins the pagemap entries (one per page from `base`) that are present file pages
    /// into address ranges.
    static func fileRuns(_ entries: [UInt64], base: UInt, pageSize: UInt) -> [Range<UInt>] {
        let present: UInt64 = 1 << 63, filePage: UInt64 = 1 << 61
        var runs: [Range<UInt>] = []
        var runStart: UInt?
        for (index, entry) in entries.enumerated() {
            let address = base + UInt(index) * pageSize
            if entry & present != 0 && entry & filePage != 0 {
                if runStart == nil { runStart = address }
            } else if let start = runStart {
                runs.append(start..<address)
                runStart = nil
            }
        }
        if let start = runStart { runs.append(start..<(base + UInt(entries.count) * pageSize)) }
        return runs
    }

    /// VmRSS from /proc/self/status, in KiB (0 if absent).
    static func residentKiB() -> Int {
        for line in readProcFile("/proc/self/status").split(separator: "\n") where line.hasPrefix("VmRSS:") {
            // "VmRSS:\t    1234 kB"
            return Int(line.dropFirst("VmRSS:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
        }
        return 0
    }

    /// A /proc file read whole (their size is not known before reading).
    private static func readProcFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
