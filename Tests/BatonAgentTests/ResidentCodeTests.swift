@testable import BatonAgent
import Foundation
import Testing

/// Which pages `batond run` gives back after start-up: the resident pages of its own
/// binary that are still the file's, never its relocated data or another file's.
@Suite struct ResidentCodeTests {
    @Test func onlyTheBinarysMappings() {
        let maps = """
            55d0c0000000-55d0c0200000 r--p 00000000 fd:01 4242 /usr/local/bin/batond
            55d0c0200000-55d0c1a00000 r-xp 00200000 fd:01 4242 /usr/local/bin/batond
            55d0c1a00000-55d0c1b00000 rw-p 01a00000 fd:01 4242 /usr/local/bin/batond
            55d0c1b10000-55d0c1c00000 rw-p 00000000 00:00 0 [heap]
            7f0000000000-7f0000100000 r-xp 00000000 fd:01 777 /usr/lib/x86_64-linux-gnu/libc.so.6
            7f0000200000-7f0000300000 r--p 00000000 fd:01 4242 /usr/local/bin/batond (deleted)
            garbage line
            """
        let ranges = ResidentCode.parseMaps(maps, inode: 4242)
        #expect(
            ranges == [
                0x55d0_c000_0000..<0x55d0_c020_0000, 0x55d0_c020_0000..<0x55d0_c1a0_0000, 0x55d0_c1a0_0000..<0x55d0_c1b0_0000,
                0x7f00_0020_0000..<0x7f00_0030_0000,
            ])
        #expect(ResidentCode.parseMaps(maps, inode: 1).isEmpty)
    }

    /// Present file pages (bits 63 and 61) join into runs; absent pages and anonymous
    /// copies (present, not a file page) end them.
    @Test func runsOfPresentFilePages() {
        let file: UInt64 = 1 << 63 | 1 << 61, anonymous: UInt64 = 1 << 63, absent: UInt64 = 0
        let entries = [file, file, anonymous, file, absent, absent, file, file]
        #expect(
            ResidentCode.fileRuns(entries, base: 0x10000, pageSize: 0x1000) == [
                0x10000..<0x12000, 0x13000..<0x14000, 0x16000..<0x18000,
            ])
        #expect(ResidentCode.fileRuns([anonymous, absent], base: 0x10000, pageSize: 0x1000).isEmpty)
    }

    #if canImport(Glibc)
    /// The heap's free pages are given back through glibc's `malloc_trim`, found at run time.
    @Test func findsMallocTrim() throws {
        let trim = try #require(ResidentCode.mallocTrim)
        #expect(trim(0) >= 0)
    }

    /// `batond run` keeps malloc to one arena; glibc accepts the setting (mallopt answers
    /// 1), and leaves it to the environment when MALLOC_ARENA_MAX is set there.
    @Test func limitsMallocArenas() throws {
        let mallopt = try #require(ResidentCode.mallopt)
        #expect(mallopt(ResidentCode.mallocArenaMax, 8) == 1)
        if getenv("MALLOC_ARENA_MAX") == nil {
            #expect(AgentService.limitMallocArenas(to: 8))
            setenv("MALLOC_ARENA_MAX", "8", 1)
            defer { unsetenv("MALLOC_ARENA_MAX") }
            #expect(!AgentService.limitMallocArenas(to: 8), "the environment decides")
        }
    }
    #endif

    #if os(Linux)
    /// The running test binary has its code mapped, some of it resident as pages of the
    /// file, and /proc says how much is resident.
    @Test func findsThisProcesssOwnCode() throws {
        var info = stat()
        try #require(stat("/proc/self/exe", &info) == 0)  // follows the link to the binary
        let mappings = ResidentCode.mappings(inode: UInt64(info.st_ino))
        #expect(!mappings.isEmpty)
        let pagemap = open("/proc/self/pagemap", O_RDONLY)
        defer { close(pagemap) }
        let runs = mappings.flatMap { ResidentCode.filePageRuns($0, pageSize: UInt(sysconf(Int32(_SC_PAGESIZE))), pagemap: pagemap) }
        #expect(!runs.isEmpty)
        #expect(ResidentCode.residentKiB() > 0)
    }
    #endif
}
